import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import fact_edit_steps, steps

settings = snakemake.params.settings
steps.run(
    snakemake, fact_edit_steps.aggregate, runs=[s["runs"] for s in settings.values()],
    layers=[s["layers"] for s in settings.values()], overlaps=[s["overlap"] for s in settings.values()],
    experiment=snakemake.wildcards.fe, metrics_out=snakemake.output.metrics, figure=snakemake.output.figure,
    summary_out=snakemake.output.summary,
)
