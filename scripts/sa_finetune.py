import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import self_awareness, steps

steps.run(
    snakemake, self_awareness.finetune, train_path=snakemake.input.train, model_dir=snakemake.input.model,
    lora=snakemake.params.lora, seed=snakemake.params.seed, experiment=snakemake.wildcards.sa,
    arm=snakemake.wildcards.sa_arm, device=snakemake.params.device, out_dir=snakemake.output.adapter,
    log_path=snakemake.output.train_log,
)
