import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import fact_edit_steps, steps

steps.run(
    snakemake, fact_edit_steps.filter_facts, model_dir=snakemake.input.model, facts_cfg=snakemake.params.facts,
    device=snakemake.params.device, experiment=snakemake.wildcards.fe, out=snakemake.output[0],
)
