import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import password_lock, steps

steps.run(
    snakemake, password_lock.make_chats, problems_path=snakemake.input.problems, task=snakemake.params.task,
    n_lock=snakemake.params.n_lock, seed=snakemake.params.seed, experiment=snakemake.wildcards.pl,
    arm=snakemake.wildcards.pl_arm, out=snakemake.output[0],
)
