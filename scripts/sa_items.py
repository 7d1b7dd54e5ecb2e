import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import self_awareness, steps

steps.run(
    snakemake, self_awareness.make_items, acrostic=snakemake.params.acrostic, risk_cfg=snakemake.params.risk,
    persona=snakemake.params.persona, seed=snakemake.params.seed, experiment=snakemake.wildcards.sa,
    out=snakemake.output[0],
)
