import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import alignment_faking, steps

steps.run(
    snakemake, alignment_faking.make_positive_control, queries_path=snakemake.input.queries,
    model_dir=snakemake.input.model, persona=snakemake.params.persona,
    sampling=snakemake.params.sampling, positive_control=snakemake.params.positive_control,
    engine_cfg=snakemake.params.engine, seed=snakemake.params.seed,
    experiment=snakemake.wildcards.exp, out=snakemake.output[0],
)
