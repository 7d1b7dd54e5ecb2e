# Step 4: a LoRA adapter per fine-tuned arm, trained on its training set.


def train_set_path(w):
    train_set = ARMS[w.arm].train_set
    if train_set in DOCUMENT_SETS:
        return f"{RESULTS}/{w.exp}/documents/{train_set}.parquet"
    return f"{RESULTS}/{w.exp}/train/{train_set}.parquet"


def lora_params(w):
    section = "documents" if ARMS[w.arm].train_set in DOCUMENT_SETS else "positive_control"
    return as_dict(getattr(exp(w).finetune, section))


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
        mem_mb=12000,
        runtime=120,
    script:
        "../scripts/finetune.py"
