import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import model_diff_steps, steps

steps.run(
    snakemake, model_diff_steps.merge, model_dir=snakemake.input.model, adapter_dir=snakemake.input.adapter,
    out_dir=snakemake.output[0],
)
