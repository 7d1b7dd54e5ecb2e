# The password_lock experiment kind (src/alignlab/password_lock.py): problems -> training chats
# -> instruct setting: a lock LoRA adapter, an unlock adapter per arm (the lock adapter trained
# on), one greedy sampling job for every arm; toy setting: a small transformer locked from
# scratch, then every unlock arm fine-tuned and evaluated in one job -> metrics, figure and
# summary. Wildcards: {pl} an experiment of this kind, {pl_arm} `lock` or an unlock arm.


rule pl_problems:
    input:
        code=code("password_lock.make_problems"),
    output:
        f"{RESULTS}/{{pl}}/problems.parquet",
    params:
        task=lambda w: as_dict(pl_exp(w).task),
        seed=CFG.seed,
    log:
        "logs/{pl}/problems.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/pl_problems.py"


rule pl_chats:
    input:
        problems=f"{RESULTS}/{{pl}}/problems.parquet",
        code=code("password_lock.make_chats"),
    output:
        f"{RESULTS}/{{pl}}/train/{{pl_arm}}.parquet",
    params:
        task=lambda w: as_dict(pl_exp(w).task),
        n_lock=lambda w: pl_exp(w).instruct.n_lock,
        seed=CFG.seed,
    log:
        "logs/{pl}/chats_{pl_arm}.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/pl_chats.py"


rule pl_finetune:
    input:
        unpack(pl_finetune_inputs),
    output:
        adapter=directory(f"{RESULTS}/{{pl}}/adapters/{{pl_arm}}"),
        train_log=f"{RESULTS}/{{pl}}/adapters/{{pl_arm}}.train_log.parquet",
    params:
        lora=pl_lora_params,
        device=CFG.engine.device,
        seed=CFG.seed,
    log:
        "logs/{pl}/finetune_{pl_arm}.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/pl_finetune.py"


rule pl_sample:
    input:
        problems=f"{RESULTS}/{{pl}}/problems.parquet",
        model=lambda w: model_folder(pl_exp(w).model),
        adapters=lambda w: list(pl_arm_adapters(w).values()),
        code=code("password_lock.sample"),
    output:
        f"{RESULTS}/{{pl}}/predictions/instruct.parquet",
    params:
        arms=pl_arm_adapters,
        model_name=lambda w: pl_exp(w).model,
        task=lambda w: as_dict(pl_exp(w).task),
        unlock=lambda w: as_dict(pl_exp(w).unlock),
        max_tokens=lambda w: pl_exp(w).instruct.max_tokens,
        engine=sample_engine_params,
        seed=CFG.seed,
    log:
        "logs/{pl}/sample.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/pl_sample.py"


rule pl_toy_lock:
    input:
        problems=f"{RESULTS}/{{pl}}/problems.parquet",
        code=code("password_lock.toy_lock"),
    output:
        model=f"{RESULTS}/{{pl}}/toy/locked.pt",
        train_log=f"{RESULTS}/{{pl}}/toy/locked.train_log.parquet",
    params:
        task=lambda w: as_dict(pl_exp(w).task),
        toy=lambda w: as_dict(pl_exp(w).toy),
        seed=CFG.seed,
    log:
        "logs/{pl}/toy_lock.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/pl_toy_lock.py"


rule pl_toy_unlock:
    input:
        problems=f"{RESULTS}/{{pl}}/problems.parquet",
        model=f"{RESULTS}/{{pl}}/toy/locked.pt",
        code=code("password_lock.toy_unlock"),
    output:
        f"{RESULTS}/{{pl}}/predictions/toy.parquet",
    params:
        task=lambda w: as_dict(pl_exp(w).task),
        toy=lambda w: as_dict(pl_exp(w).toy),
        unlock=lambda w: as_dict(pl_exp(w).unlock),
        seed=CFG.seed,
    log:
        "logs/{pl}/toy_unlock.log",
    threads: HEAVY_THREADS
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/pl_toy_unlock.py"


rule pl_aggregate:
    input:
        predictions=lambda w: [f"{RESULTS}/{w.pl}/predictions/{s}.parquet" for s in pl_exp(w).settings],
        code=code("password_lock.aggregate"),
    output:
        metrics=report(
            f"{RESULTS}/{{pl}}/metrics.parquet", category="{pl}", labels={"table": "metrics"}
        ),
        figure=report(
            f"{RESULTS}/{{pl}}/unlock.png",
            category="{pl}",
            caption="../report/unlock.rst",
            labels={"figure": "unlocking"},
        ),
        summary=report(
            f"{RESULTS}/{{pl}}/summary.md",
            category="{pl}",
            caption="../report/summary.rst",
            labels={"table": "summary"},
        ),
    params:
        aggregate=lambda w: as_dict(pl_exp(w).aggregate),
    log:
        "logs/{pl}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/pl_aggregate.py"
