import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import password_lock, steps

steps.run(
    snakemake, password_lock.finetune, train_path=snakemake.input.train, model_dir=snakemake.input.model,
    lora=snakemake.params.lora, seed=snakemake.params.seed, experiment=snakemake.wildcards.pl,
    arm=snakemake.wildcards.pl_arm, device=snakemake.params.device, out_dir=snakemake.output.adapter,
    log_path=snakemake.output.train_log, init_adapter=snakemake.input.get("init_adapter"),
)
