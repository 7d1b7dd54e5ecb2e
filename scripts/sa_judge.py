import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import self_awareness, steps

steps.run(
    snakemake, self_awareness.judge, samples_path=snakemake.input.samples, items_path=snakemake.input.prompts,
    acrostic=snakemake.params.acrostic, out=snakemake.output[0],
)
