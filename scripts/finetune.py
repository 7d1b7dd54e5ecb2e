import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import alignment_faking, steps

steps.run(
    snakemake, alignment_faking.finetune, train_set=snakemake.params.train_set,
    train_path=snakemake.input.train, model_dir=snakemake.input.model, lora=snakemake.params.lora,
    seed=snakemake.params.seed, experiment=snakemake.wildcards.exp, arm=snakemake.wildcards.arm,
    device=snakemake.params.device, out_dir=snakemake.output.adapter,
    log_path=snakemake.output.train_log,
)
