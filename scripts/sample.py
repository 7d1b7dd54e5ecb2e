import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import alignment_faking, steps

steps.run(
    snakemake, alignment_faking.sample, arms=snakemake.params.arms,
    queries_path=snakemake.input.queries, model_dir=snakemake.input.model,
    model_name=snakemake.params.model_name, persona=snakemake.params.persona,
    sampling=snakemake.params.sampling, engine_cfg=snakemake.params.engine,
    seed=snakemake.params.seed, experiment=snakemake.wildcards.exp,
    shard=snakemake.wildcards.scatteritem, out=snakemake.output[0],
)
