import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import alignment_faking, steps

steps.run(
    snakemake, alignment_faking.make_queries, spec=snakemake.params.spec,
    seed=snakemake.params.seed, experiment=snakemake.wildcards.exp, out=snakemake.output[0],
)
