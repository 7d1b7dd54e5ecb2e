import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import password_lock, steps

steps.run(
    snakemake, password_lock.toy_unlock, problems_path=snakemake.input.problems, locked_model=snakemake.input.model,
    task=snakemake.params.task, toy_cfg=snakemake.params.toy, unlock=snakemake.params.unlock,
    seed=snakemake.params.seed, experiment=snakemake.wildcards.pl, device="cpu", out=snakemake.output[0],
)
