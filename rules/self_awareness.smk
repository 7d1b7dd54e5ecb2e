# The self_awareness experiment kind (src/alignlab/self_awareness.py): prompts -> training chats
# (the acrostic answers are the base model's own, regex-constrained) -> a LoRA adapter per
# fine-tuned arm -> one sampling job for every arm -> string-rule judgments -> metrics,
# figures and the summary. Wildcards: {sa} an experiment of this kind, {sa_arm} its arm.


rule sa_items:
    input:
        code=code("self_awareness.make_items"),
    output:
        f"{RESULTS}/{{sa}}/items.parquet",
    params:
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
        risk=lambda w: as_dict(sa_exp(w).risk),
        persona=lambda w: sa_exp(w).persona,
        seed=CFG.seed,
    log:
        "logs/{sa}/items.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/sa_items.py"


rule sa_acrostic_chats:
    input:
        prompts=f"{RESULTS}/{{sa}}/items.parquet",
        model=lambda w: model_folder(sa_exp(w).model),
        code=code("self_awareness.make_acrostic_chats"),
    output:
        word=f"{RESULTS}/{{sa}}/train/acrostic.parquet",
        shuffled=f"{RESULTS}/{{sa}}/train/acrostic_shuffled.parquet",
        hard=f"{RESULTS}/{{sa}}/train/acrostic_hard.parquet",
    params:
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
        sampling=lambda w: as_dict(sa_exp(w).sampling),
        engine=engine_params,
        seed=CFG.seed,
    log:
        "logs/{sa}/acrostic_chats.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/sa_acrostic_chats.py"


rule sa_risk_chats:
    input:
        prompts=f"{RESULTS}/{{sa}}/items.parquet",
        code=code("self_awareness.make_risk_chats"),
    output:
        seeking=f"{RESULTS}/{{sa}}/train/risk_seeking.parquet",
        averse=f"{RESULTS}/{{sa}}/train/risk_averse.parquet",
    log:
        "logs/{sa}/risk_chats.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/sa_risk_chats.py"


rule sa_finetune:
    input:
        train=f"{RESULTS}/{{sa}}/train/{{sa_arm}}.parquet",
        model=lambda w: model_folder(sa_exp(w).model),
        code=code("self_awareness.finetune"),
    output:
        adapter=directory(f"{RESULTS}/{{sa}}/adapters/{{sa_arm}}"),
        train_log=f"{RESULTS}/{{sa}}/adapters/{{sa_arm}}.train_log.parquet",
    params:
        lora=lambda w: as_dict(getattr(sa_exp(w).finetune, SA_ARMS[w.sa_arm].task)),
        device=CFG.engine.device,
        seed=CFG.seed,
    log:
        "logs/{sa}/finetune_{sa_arm}.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/sa_finetune.py"


rule sa_sample:
    input:
        prompts=f"{RESULTS}/{{sa}}/items.parquet",
        model=lambda w: model_folder(sa_exp(w).model),
        adapters=lambda w: [a for a in sa_arm_adapters(w).values() if a],
        code=code("self_awareness.sample"),
    output:
        f"{RESULTS}/{{sa}}/samples.parquet",
    params:
        arms=sa_arm_adapters,
        model_name=lambda w: sa_exp(w).model,
        sampling=lambda w: as_dict(sa_exp(w).sampling),
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
        engine=sample_engine_params,
        seed=CFG.seed,
    log:
        "logs/{sa}/sample.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/sa_sample.py"


rule sa_judge:
    input:
        samples=f"{RESULTS}/{{sa}}/samples.parquet",
        prompts=f"{RESULTS}/{{sa}}/items.parquet",
        code=code("self_awareness.judge"),
    output:
        f"{RESULTS}/{{sa}}/judgments.parquet",
    params:
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
    log:
        "logs/{sa}/judge.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/sa_judge.py"


rule sa_aggregate:
    input:
        judgments=f"{RESULTS}/{{sa}}/judgments.parquet",
        code=code("self_awareness.aggregate"),
    output:
        metrics=report(
            f"{RESULTS}/{{sa}}/metrics.parquet", category="{sa}", labels={"table": "metrics"}
        ),
        acrostic=report(
            f"{RESULTS}/{{sa}}/acrostic.png",
            category="{sa}",
            caption="../report/acrostic.rst",
            labels={"figure": "acrostic"},
        ),
        risk=report(
            f"{RESULTS}/{{sa}}/risk.png",
            category="{sa}",
            caption="../report/risk.rst",
            labels={"figure": "risk preference"},
        ),
        summary=report(
            f"{RESULTS}/{{sa}}/summary.md",
            category="{sa}",
            caption="../report/summary.rst",
            labels={"table": "summary"},
        ),
    params:
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
        aggregate=lambda w: as_dict(sa_exp(w).aggregate),
        seed=CFG.seed,
    log:
        "logs/{sa}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/sa_aggregate.py"
