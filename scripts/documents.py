import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import alignment_faking, steps

steps.run(
    snakemake, alignment_faking.make_documents, corpus=snakemake.wildcards.corpus,
    documents=snakemake.params.documents, persona=snakemake.params.persona,
    seed=snakemake.params.seed, experiment=snakemake.wildcards.exp, out=snakemake.output[0],
    model_dir=snakemake.input.get("model"), engine_cfg=snakemake.params.engine,
    endpoint=snakemake.params.endpoint,
)
