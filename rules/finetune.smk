# Step 4: a LoRA adapter per fine-tuned arm, trained on its training set.


rule finetune:
    input:
        train=train_set_path,
        model=lambda w: model_folder(exp(w).model),
        code=code("alignment_faking.finetune"),
    output:
        adapter=directory(f"{RESULTS}/{{exp}}/adapters/{{arm}}"),
        train_log=f"{RESULTS}/{{exp}}/adapters/{{arm}}.train_log.parquet",
    params:
        train_set=lambda w: ARMS[w.arm].train_set,
        lora=lora_params,
        device=CFG.engine.device,
        seed=CFG.seed,
    log:
        "logs/{exp}/finetune_{arm}.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/finetune.py"
