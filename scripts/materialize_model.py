from alignlab import models, steps

steps.run(
    snakemake, models.build, name=snakemake.wildcards.model, spec=snakemake.params.spec,
    folder=snakemake.output.folder, index=snakemake.output.index,
)
