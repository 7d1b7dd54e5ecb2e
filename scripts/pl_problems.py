import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import password_lock, steps

steps.run(
    snakemake, password_lock.make_problems, task=snakemake.params.task, seed=snakemake.params.seed,
    experiment=snakemake.wildcards.pl, out=snakemake.output[0],
)
