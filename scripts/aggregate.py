import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import alignment_faking, steps

steps.run(
    snakemake, alignment_faking.aggregate, compliance_paths=list(snakemake.input.compliance),
    af_paths=list(snakemake.input.af), aggregate_cfg=snakemake.params.aggregate,
    judge=snakemake.params.judge, seed=snakemake.params.seed, experiment=snakemake.wildcards.exp,
    metrics_out=snakemake.output.metrics, gaps_out=snakemake.output.gaps,
    figure_out=snakemake.output.figure, summary_out=snakemake.output.summary,
)
