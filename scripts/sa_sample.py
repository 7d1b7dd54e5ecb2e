import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import self_awareness, steps

steps.run(
    snakemake, self_awareness.sample, arms=snakemake.params.arms, items_path=snakemake.input.prompts,
    model_dir=snakemake.input.model, model_name=snakemake.params.model_name, sampling=snakemake.params.sampling,
    acrostic=snakemake.params.acrostic, engine_cfg=snakemake.params.engine, seed=snakemake.params.seed,
    experiment=snakemake.wildcards.sa, out=snakemake.output[0],
)
