import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import model_diff_steps, steps

steps.run(
    snakemake, model_diff_steps.compare, texts_path=snakemake.input.texts, base_dir=snakemake.input.base,
    tuned_dir=snakemake.input.tuned, sae_path=snakemake.input.sae, texts_cfg=snakemake.params.texts,
    batch_size=snakemake.params.batch_size, experiment=snakemake.wildcards.md, pair=snakemake.wildcards.md_pair,
    device=snakemake.params.device, weights_out=snakemake.output.weights,
    activations_out=snakemake.output.activations, sae_out=snakemake.output.sae, figure=snakemake.output.figure,
)
