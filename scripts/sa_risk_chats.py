import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import self_awareness, steps

steps.run(
    snakemake, self_awareness.make_risk_chats, items_path=snakemake.input.prompts,
    out_seeking=snakemake.output.seeking, out_averse=snakemake.output.averse,
)
