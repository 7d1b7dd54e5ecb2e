import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import models, steps

steps.run(
    snakemake, models.build, name=snakemake.wildcards.model, spec=snakemake.params.spec,
    folder=snakemake.output.folder, index=snakemake.output.index, config=snakemake.config,
)
