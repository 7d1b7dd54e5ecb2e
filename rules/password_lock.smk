# The password_lock experiment kind (src/alignlab/kinds/password_lock/): problems -> training
# chats -> instruct setting: a lock LoRA adapter, an unlock adapter per arm (the lock adapter
# trained on), one greedy sampling job for every arm; toy setting: a small transformer locked
# from scratch, then every unlock arm fine-tuned and evaluated in one job -> metrics, figure and
# summary. Wildcards: {pl} an experiment of this kind, {pl_arm} `lock` or an unlock arm, or a
# training replicate of one (`lock.r1`, `strong_4.r1`: it continues `lock.r1`).
from alignlab.kinds.password_lock import arms as pl_arms

PL = "kinds.password_lock.steps"
PL_EXPERIMENTS = experiments_of("password_lock")


wildcard_constraints:
    pl=one_of(PL_EXPERIMENTS),
    pl_arm=pl_arms.ARM_PATTERN,


pl_exp = lambda w: PL_EXPERIMENTS[w.pl]


rule pl_problems:
    input:
        code=code(f"{PL}.make_problems"),
    output:
        out=f"{RESULTS}/{{pl}}/problems.parquet",
    params:
        step=f"{PL}.make_problems",
        task=lambda w: as_dict(pl_exp(w).task),
        seed=CFG.seed,
        experiment=lambda w: w.pl,
    log:
        "logs/{pl}/problems.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule pl_chats:
    input:
        problems_path=f"{RESULTS}/{{pl}}/problems.parquet",
        code=code(f"{PL}.make_chats"),
    output:
        out=f"{RESULTS}/{{pl}}/train/{{pl_arm}}.parquet",
    params:
        step=f"{PL}.make_chats",
        task=lambda w: as_dict(pl_exp(w).task),
        n_lock=lambda w: pl_exp(w).instruct.n_lock,
        seed=CFG.seed,
        experiment=lambda w: w.pl,
        arm=lambda w: w.pl_arm,
    log:
        "logs/{pl}/chats_{pl_arm}.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule pl_finetune:
    input:
        unpack(lambda w: pl_arms.finetune_inputs(w.pl, pl_exp(w), w.pl_arm)),
    output:
        out_dir=directory(f"{RESULTS}/{{pl}}/adapters/{{pl_arm}}"),
        log_path=f"{RESULTS}/{{pl}}/adapters/{{pl_arm}}.train_log.parquet",
    params:
        step="finetune.train_step",
        documents=False,
        lora=lambda w: pl_arms.lora_params(pl_exp(w), w.pl_arm),
        device=CFG.engine.device,
        seed=lambda w: pl_arms.finetune_seed(CFG.seed, w.pl, w.pl_arm),
    log:
        "logs/{pl}/finetune_{pl_arm}.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule pl_sample:
    input:
        problems_path=f"{RESULTS}/{{pl}}/problems.parquet",
        model_dir=lambda w: model_folder(pl_exp(w).model),
        adapter_dirs=lambda w: list(pl_arms.arm_adapters(w.pl, pl_exp(w)).values()),
        code=code(f"{PL}.sample"),
    output:
        out=f"{RESULTS}/{{pl}}/predictions/instruct.parquet",
    params:
        step=f"{PL}.sample",
        arms=lambda w: pl_arms.arm_adapters(w.pl, pl_exp(w)),
        model_name=lambda w: pl_exp(w).model,
        task=lambda w: as_dict(pl_exp(w).task),
        unlock=lambda w: as_dict(pl_exp(w).unlock),
        max_tokens=lambda w: pl_exp(w).instruct.max_tokens,
        engine_cfg=sample_engine_params,
        seed=CFG.seed,
        experiment=lambda w: w.pl,
    log:
        "logs/{pl}/sample.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule pl_toy_lock:
    input:
        problems_path=f"{RESULTS}/{{pl}}/problems.parquet",
        code=code(f"{PL}.toy_lock"),
    output:
        out_model=f"{RESULTS}/{{pl}}/toy/locked.pt",
        log_path=f"{RESULTS}/{{pl}}/toy/locked.train_log.parquet",
    params:
        step=f"{PL}.toy_lock",
        task=lambda w: as_dict(pl_exp(w).task),
        toy_cfg=lambda w: as_dict(pl_exp(w).toy),
        seed=CFG.seed,
        experiment=lambda w: w.pl,
        device="cpu",
    log:
        "logs/{pl}/toy_lock.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule pl_toy_unlock:
    input:
        problems_path=f"{RESULTS}/{{pl}}/problems.parquet",
        locked_model=f"{RESULTS}/{{pl}}/toy/locked.pt",
        code=code(f"{PL}.toy_unlock"),
    output:
        out=f"{RESULTS}/{{pl}}/predictions/toy.parquet",
    params:
        step=f"{PL}.toy_unlock",
        task=lambda w: as_dict(pl_exp(w).task),
        toy_cfg=lambda w: as_dict(pl_exp(w).toy),
        unlock=lambda w: as_dict(pl_exp(w).unlock),
        seed=CFG.seed,
        experiment=lambda w: w.pl,
        device="cpu",
    log:
        "logs/{pl}/toy_unlock.log",
    threads: HEAVY_THREADS
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule pl_aggregate:
    input:
        predictions=lambda w: [f"{RESULTS}/{w.pl}/predictions/{s}.parquet" for s in pl_exp(w).settings],
        problems_path=f"{RESULTS}/{{pl}}/problems.parquet",
        code=code(f"{PL}.aggregate"),
    output:
        metrics_out=metrics_report("pl"),
        contrasts_out=f"{RESULTS}/{{pl}}/contrasts.parquet",
        grid_out=f"{RESULTS}/{{pl}}/weak_grid.parquet",
        figure=figure_report("password_lock", "pl", "unlock.png", "unlock.rst", "unlocking"),
        grid_figure=figure_report("password_lock", "pl", "weak_grid.png", "weak_grid.rst", "weak samples"),
        summary_out=summary_report("pl"),
    params:
        step=f"{PL}.aggregate",
        aggregate_cfg=lambda w: as_dict(pl_exp(w).aggregate),
        seed=CFG.seed,
        experiment=lambda w: w.pl,
    log:
        "logs/{pl}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# Every setting's and arm replicate's predictions as an Inspect eval log (`inspect view
# --log-dir results/<exp>/inspect`), with an index of the logs.
rule pl_inspect:
    input:
        predictions=lambda w: [f"{RESULTS}/{w.pl}/predictions/{s}.parquet" for s in pl_exp(w).settings],
        code=code(f"{PL}.write_inspect"),
    output:
        out_dir=directory(f"{RESULTS}/{{pl}}/inspect"),
    params:
        step=f"{PL}.write_inspect",
        task=lambda w: as_dict(pl_exp(w).task),
        seed=CFG.seed,
        experiment=lambda w: w.pl,
    log:
        "logs/{pl}/inspect.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT
