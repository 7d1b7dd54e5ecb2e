import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import artifacts, steps

steps.run(snakemake, artifacts.to_csv, path=snakemake.input[0], out=snakemake.output[0])
