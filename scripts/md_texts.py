import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import model_diff_steps, steps

steps.run(
    snakemake, model_diff_steps.make_texts, texts=snakemake.params.texts, experiment=snakemake.wildcards.md,
    out=snakemake.output[0],
)
