import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import self_awareness, steps

steps.run(
    snakemake, self_awareness.aggregate, judgments_path=snakemake.input.judgments,
    acrostic=snakemake.params.acrostic, aggregate_cfg=snakemake.params.aggregate, seed=snakemake.params.seed,
    experiment=snakemake.wildcards.sa, metrics_out=snakemake.output.metrics,
    acrostic_figure=snakemake.output.acrostic, risk_figure=snakemake.output.risk,
    summary_out=snakemake.output.summary,
)
