import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import model_diff_steps, steps

steps.run(
    snakemake, model_diff_steps.aggregate, pairs=snakemake.params.pairs, sources=snakemake.params.sources,
    experiment=snakemake.wildcards.md, metrics_out=snakemake.output.metrics, summary_out=snakemake.output.summary,
    base=snakemake.params.base, more_steps=snakemake.params.more_steps,
)
