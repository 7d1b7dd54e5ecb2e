from alignlab import artifacts, steps

steps.run(snakemake, artifacts.to_csv, path=snakemake.input[0], out=snakemake.output[0])
