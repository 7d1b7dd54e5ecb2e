import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import password_lock, steps

steps.run(
    snakemake, password_lock.sample, arms=snakemake.params.arms, problems_path=snakemake.input.problems,
    model_dir=snakemake.input.model, model_name=snakemake.params.model_name, task=snakemake.params.task,
    unlock=snakemake.params.unlock, max_tokens=snakemake.params.max_tokens, engine_cfg=snakemake.params.engine,
    seed=snakemake.params.seed, experiment=snakemake.wildcards.pl, out=snakemake.output[0],
)
