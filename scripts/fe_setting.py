import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import fact_edit_steps, steps

steps.run(
    snakemake, fact_edit_steps.run_setting, model_dir=snakemake.input.model, facts_path=snakemake.input.facts,
    facts_cfg=snakemake.params.facts, edit_cfg=snakemake.params.edit, penalty=snakemake.params.penalty,
    setting=snakemake.wildcards.fe_setting, seed=snakemake.params.seed, experiment=snakemake.wildcards.fe,
    device=snakemake.params.device, runs_out=snakemake.output.runs, layers_out=snakemake.output.layers,
    overlap_out=snakemake.output.overlap,
)
