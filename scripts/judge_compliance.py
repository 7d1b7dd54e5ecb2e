import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import alignment_faking, steps

steps.run(
    snakemake, alignment_faking.judge_compliance, arm=snakemake.wildcards.arm,
    samples_path=snakemake.input.samples,
    queries_path=snakemake.input.queries, judge=snakemake.params.judge,
    sampling=snakemake.params.sampling, model_dir=snakemake.input.get("model"),
    engine_cfg=snakemake.params.engine, seed=snakemake.params.seed,
    experiment=snakemake.wildcards.exp, out=snakemake.output[0],
    endpoint=snakemake.params.endpoint,
)
