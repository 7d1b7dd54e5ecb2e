import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import password_lock, steps

steps.run(
    snakemake, password_lock.toy_lock, problems_path=snakemake.input.problems, task=snakemake.params.task,
    toy_cfg=snakemake.params.toy, seed=snakemake.params.seed, experiment=snakemake.wildcards.pl, device="cpu",
    out_model=snakemake.output.model, log_path=snakemake.output.train_log,
)
