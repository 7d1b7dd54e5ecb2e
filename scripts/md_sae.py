import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import model_diff_steps, steps

steps.run(
    snakemake, model_diff_steps.train_sae, texts_path=snakemake.input.texts, model_dir=snakemake.input.model,
    sae_cfg=snakemake.params.sae, texts_cfg=snakemake.params.texts, batch_size=snakemake.params.batch_size,
    seed=snakemake.params.seed, experiment=snakemake.wildcards.md, device=snakemake.params.device,
    out=snakemake.output.sae, log_path=snakemake.output.train_log,
)
