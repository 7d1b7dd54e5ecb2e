import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import shards, steps

steps.run(
    snakemake, shards.gather, paths=list(snakemake.input.shards), schema=snakemake.params.schema,
    out=snakemake.output[0], arm=snakemake.params.get("arm"),
)
