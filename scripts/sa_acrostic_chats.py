import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import self_awareness, steps

steps.run(
    snakemake, self_awareness.make_acrostic_chats, items_path=snakemake.input.prompts,
    model_dir=snakemake.input.model, acrostic=snakemake.params.acrostic, sampling=snakemake.params.sampling,
    engine_cfg=snakemake.params.engine, seed=snakemake.params.seed, experiment=snakemake.wildcards.sa,
    out_word=snakemake.output.word, out_shuffled=snakemake.output.shuffled, out_hard=snakemake.output.hard,
)
