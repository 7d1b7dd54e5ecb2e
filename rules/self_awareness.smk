# The self_awareness experiment kind (src/alignlab/kinds/self_awareness/): prompts -> training
# chats (the acrostic answers are the base model's own, regex-constrained) -> a LoRA adapter per
# fine-tuned arm -> one sampling job for every arm -> string-rule judgments -> metrics, figures
# and the summary. Wildcards: {sa} an experiment of this kind, {sa_arm} a training replicate of
# a fine-tuned arm ("acrostic", "acrostic.r1", ...).
from alignlab.kinds.self_awareness import arms as sa_arms

SA = "kinds.self_awareness.steps"
SA_EXPERIMENTS = experiments_of("self_awareness")


wildcard_constraints:
    sa=one_of(SA_EXPERIMENTS),
    sa_arm=sa_arms.INSTANCE,


sa_exp = lambda w: SA_EXPERIMENTS[w.sa]


rule sa_items:
    input:
        code=code(f"{SA}.make_items"),
    output:
        out=f"{RESULTS}/{{sa}}/items.parquet",
    params:
        step=f"{SA}.make_items",
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
        risk_cfg=lambda w: as_dict(sa_exp(w).risk),
        persona=lambda w: sa_exp(w).persona,
        seed=CFG.seed,
        experiment=lambda w: w.sa,
    log:
        "logs/{sa}/items.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule sa_acrostic_chats:
    input:
        items_path=f"{RESULTS}/{{sa}}/items.parquet",
        model_dir=lambda w: model_folder(sa_exp(w).model),
        code=code(f"{SA}.make_acrostic_chats"),
    output:
        out_word=f"{RESULTS}/{{sa}}/train/acrostic.parquet",
        out_shuffled=f"{RESULTS}/{{sa}}/train/acrostic_shuffled.parquet",
        out_hard=f"{RESULTS}/{{sa}}/train/acrostic_hard.parquet",
    params:
        step=f"{SA}.make_acrostic_chats",
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
        sampling=lambda w: as_dict(sa_exp(w).sampling),
        engine_cfg=engine_params,
        seed=CFG.seed,
        experiment=lambda w: w.sa,
    log:
        "logs/{sa}/acrostic_chats.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# The choices, answered by letter, and (risk.n_ordinary > 0) ordinary 0-100 questions answered
# by the base model itself.
rule sa_risk_chats:
    input:
        unpack(lambda w: sa_arms.risk_chats_inputs(w.sa, sa_exp(w))),
    output:
        out_seeking=f"{RESULTS}/{{sa}}/train/risk_seeking.parquet",
        out_averse=f"{RESULTS}/{{sa}}/train/risk_averse.parquet",
    params:
        step=f"{SA}.make_risk_chats",
        sampling=lambda w: as_dict(sa_exp(w).sampling),
        engine_cfg=engine_params,
        seed=CFG.seed,
        experiment=lambda w: w.sa,
    log:
        "logs/{sa}/risk_chats.log",
    threads: lambda w: HEAVY_THREADS if sa_exp(w).risk.n_ordinary else 1
    resources:
        **model_job_if(SA_EXPERIMENTS, lambda e: e.risk.n_ordinary),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule sa_finetune:
    input:
        train_path=lambda w: sa_arms.train_set_path(w.sa, w.sa_arm),
        model_dir=lambda w: model_folder(sa_exp(w).model),
        code=code("finetune.train_step"),
    output:
        out_dir=directory(f"{RESULTS}/{{sa}}/adapters/{{sa_arm}}"),
        log_path=f"{RESULTS}/{{sa}}/adapters/{{sa_arm}}.train_log.parquet",
    params:
        step="finetune.train_step",
        documents=False,
        lora=lambda w: sa_arms.lora_params(sa_exp(w), w.sa_arm),
        device=CFG.engine.device,
        seed=lambda w: sa_arms.finetune_seed(CFG.seed, w.sa, w.sa_arm),
    log:
        "logs/{sa}/finetune_{sa_arm}.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule sa_sample:
    input:
        items_path=f"{RESULTS}/{{sa}}/items.parquet",
        model_dir=lambda w: model_folder(sa_exp(w).model),
        adapter_dirs=lambda w: [a for a in sa_arms.arm_adapters(w.sa, sa_exp(w)).values() if a],
        code=code(f"{SA}.sample"),
    output:
        out=f"{RESULTS}/{{sa}}/samples.parquet",
    params:
        step=f"{SA}.sample",
        arms=lambda w: sa_arms.arm_adapters(w.sa, sa_exp(w)),
        model_name=lambda w: sa_exp(w).model,
        sampling=lambda w: as_dict(sa_exp(w).sampling),
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
        engine_cfg=sample_engine_params,
        seed=CFG.seed,
        experiment=lambda w: w.sa,
    log:
        "logs/{sa}/sample.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule sa_judge:
    input:
        samples_path=f"{RESULTS}/{{sa}}/samples.parquet",
        items_path=f"{RESULTS}/{{sa}}/items.parquet",
        code=code(f"{SA}.judge"),
    output:
        out=f"{RESULTS}/{{sa}}/judgments.parquet",
    params:
        step=f"{SA}.judge",
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
    log:
        "logs/{sa}/judge.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule sa_aggregate:
    input:
        judgments_path=f"{RESULTS}/{{sa}}/judgments.parquet",
        code=code(f"{SA}.aggregate"),
    output:
        metrics_out=metrics_report("sa"),
        contrasts_out=f"{RESULTS}/{{sa}}/contrasts.parquet",
        correlation_out=f"{RESULTS}/{{sa}}/correlation.parquet",
        spread_out=f"{RESULTS}/{{sa}}/spread.parquet",
        acrostic_figure=figure_report("self_awareness", "sa", "acrostic.png", "acrostic.rst", "acrostic"),
        risk_figure=figure_report("self_awareness", "sa", "risk.png", "risk.rst", "risk preference"),
        summary_out=summary_report("sa"),
    params:
        step=f"{SA}.aggregate",
        acrostic=lambda w: as_dict(sa_exp(w).acrostic),
        aggregate_cfg=lambda w: as_dict(sa_exp(w).aggregate),
        min_spread=lambda w: sa_exp(w).risk.min_spread,
        seed=CFG.seed,
        experiment=lambda w: w.sa,
    log:
        "logs/{sa}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# Every arm replicate's samples and judgments as an Inspect eval log (`inspect view --log-dir
# results/<exp>/inspect`), with an index of the logs.
rule sa_inspect:
    input:
        samples_path=f"{RESULTS}/{{sa}}/samples.parquet",
        judgments_path=f"{RESULTS}/{{sa}}/judgments.parquet",
        items_path=f"{RESULTS}/{{sa}}/items.parquet",
        code=code(f"{SA}.write_inspect"),
    output:
        out_dir=directory(f"{RESULTS}/{{sa}}/inspect"),
    params:
        step=f"{SA}.write_inspect",
        arms=lambda w: sa_arms.arm_adapters(w.sa, sa_exp(w)),
        experiment=lambda w: w.sa,
    log:
        "logs/{sa}/inspect.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT
