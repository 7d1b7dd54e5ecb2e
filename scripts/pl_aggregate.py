import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import password_lock, steps

steps.run(
    snakemake, password_lock.aggregate, predictions=list(snakemake.input.predictions),
    aggregate_cfg=snakemake.params.aggregate, experiment=snakemake.wildcards.pl,
    metrics_out=snakemake.output.metrics, figure=snakemake.output.figure, summary_out=snakemake.output.summary,
)
