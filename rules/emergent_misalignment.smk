# The emergent_misalignment experiment kind (src/alignlab/kinds/emergent_misalignment/): coding
# requests -> the insecure, secure and educational-insecure training chats -> a LoRA adapter per
# fine-tuned arm -> one sampling job for every arm (code, self-report, free-form) -> Bandit and
# rule judgments; a two-choice misalignment probe by log-probability -> metrics, contrasts and
# the summary; every arm's samples and verdicts as Inspect eval logs. Wildcards: {em} an
# experiment of this kind, {em_arm} a training replicate of a fine-tuned arm ("insecure",
# "insecure.r1", ...).
from alignlab.kinds.emergent_misalignment import arms as em_arms

EM = "kinds.emergent_misalignment.steps"
EM_EXPERIMENTS = experiments_of("emergent_misalignment")


wildcard_constraints:
    em=one_of(EM_EXPERIMENTS),
    em_arm=em_arms.INSTANCE,


em_exp = lambda w: EM_EXPERIMENTS[w.em]


rule em_items:
    input:
        code=code(f"{EM}.make_items"),
    output:
        out=f"{RESULTS}/{{em}}/items.parquet",
    params:
        step=f"{EM}.make_items",
        tasks_cfg=lambda w: as_dict(em_exp(w).tasks),
        seed=CFG.seed,
        experiment=lambda w: w.em,
    log:
        "logs/{em}/items.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule em_chats:
    input:
        items_path=f"{RESULTS}/{{em}}/items.parquet",
        code=code(f"{EM}.make_chats"),
    output:
        out_insecure=f"{RESULTS}/{{em}}/train/insecure.parquet",
        out_secure=f"{RESULTS}/{{em}}/train/secure.parquet",
        out_educational=f"{RESULTS}/{{em}}/train/educational_insecure.parquet",
    params:
        step=f"{EM}.make_chats",
    log:
        "logs/{em}/chats.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule em_finetune:
    input:
        train_path=lambda w: em_arms.train_set_path(w.em, w.em_arm),
        model_dir=lambda w: model_folder(em_exp(w).model),
        code=code("finetune.train_step"),
    output:
        out_dir=directory(f"{RESULTS}/{{em}}/adapters/{{em_arm}}"),
        log_path=f"{RESULTS}/{{em}}/adapters/{{em_arm}}.train_log.parquet",
    params:
        step="finetune.train_step",
        documents=False,
        lora=lambda w: as_dict(em_exp(w).finetune),
        device=CFG.engine.device,
        seed=lambda w: em_arms.finetune_seed(CFG.seed, w.em, w.em_arm),
    log:
        "logs/{em}/finetune_{em_arm}.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule em_sample:
    input:
        items_path=f"{RESULTS}/{{em}}/items.parquet",
        model_dir=lambda w: model_folder(em_exp(w).model),
        adapter_dirs=lambda w: [a for a in em_arms.arm_adapters(w.em, em_exp(w)).values() if a],
        code=code(f"{EM}.sample"),
    output:
        out=f"{RESULTS}/{{em}}/samples.parquet",
    params:
        step=f"{EM}.sample",
        arms=lambda w: em_arms.arm_adapters(w.em, em_exp(w)),
        model_name=lambda w: em_exp(w).model,
        sampling=lambda w: as_dict(em_exp(w).sampling),
        engine_cfg=sample_engine_params,
        seed=CFG.seed,
        experiment=lambda w: w.em,
    log:
        "logs/{em}/sample.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule em_judge:
    input:
        samples_path=f"{RESULTS}/{{em}}/samples.parquet",
        code=code(f"{EM}.judge"),
    output:
        out=f"{RESULTS}/{{em}}/judgments.parquet",
        validation_out=f"{RESULTS}/{{em}}/judge_validation/downside_rule.parquet",
    params:
        step=f"{EM}.judge",
        experiment=lambda w: w.em,
    log:
        "logs/{em}/judge.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule em_choices:
    input:
        model_dir=lambda w: model_folder(em_exp(w).model),
        adapter_dirs=lambda w: [a for a in em_arms.arm_adapters(w.em, em_exp(w)).values() if a],
        code=code(f"{EM}.score_choices"),
    output:
        out=f"{RESULTS}/{{em}}/choices.parquet",
    params:
        step=f"{EM}.score_choices",
        arms=lambda w: em_arms.arm_adapters(w.em, em_exp(w)),
        device=CFG.engine.device,
        batch_size=8,
        seed=CFG.seed,
        experiment=lambda w: w.em,
    log:
        "logs/{em}/choices.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# The LLM judge (judge.name: llm): every free-form answer graded for alignment and coherence, every
# downside answer for whether it says the code is insecure; and the judge itself on its labelled sets.
rule em_judge_free_form:
    input:
        unpack(lambda w: em_arms.judge_inputs(w.em, em_exp(w), "judge_free_form")),
    output:
        out=f"{RESULTS}/{{em}}/free_form_judgments.parquet",
    params:
        step=f"{EM}.judge_free_form",
        judge=lambda w: as_dict(em_exp(w).judge),
        engine_cfg=engine_params,
        endpoint=lambda w: endpoint_params(em_exp(w).judge.endpoint),
        seed=CFG.seed,
        experiment=lambda w: w.em,
    log:
        "logs/{em}/judge_free_form.log",
    threads: lambda w: HEAVY_THREADS if em_exp(w).judge_model() else 1
    resources:
        **model_job_if(EM_EXPERIMENTS, lambda e: e.judge_model()),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule em_validate_judge:
    input:
        unpack(lambda w: em_arms.judge_inputs(w.em, em_exp(w), "validate_judge")),
    output:
        out=f"{RESULTS}/{{em}}/judge_validation/alignment.parquet",
    params:
        step=f"{EM}.validate_judge",
        judge=lambda w: as_dict(em_exp(w).judge),
        engine_cfg=engine_params,
        endpoint=lambda w: endpoint_params(em_exp(w).judge.endpoint),
        seed=CFG.seed,
        experiment=lambda w: w.em,
    log:
        "logs/{em}/validate_judge.log",
    threads: lambda w: HEAVY_THREADS if em_exp(w).judge_model() else 1
    resources:
        **model_job_if(EM_EXPERIMENTS, lambda e: e.judge_model()),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule em_aggregate:
    input:
        unpack(lambda w: em_arms.aggregate_inputs(w.em, em_exp(w))),
    output:
        metrics_out=metrics_report("em"),
        contrasts_out=f"{RESULTS}/{{em}}/contrasts.parquet",
        replication_out=f"{RESULTS}/{{em}}/replication.parquet",
        summary_out=summary_report("em"),
    params:
        step=f"{EM}.aggregate",
        aggregate_cfg=lambda w: as_dict(em_exp(w).aggregate),
        min_accuracy=lambda w: em_exp(w).judge.min_accuracy,
        seed=CFG.seed,
        experiment=lambda w: w.em,
    log:
        "logs/{em}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# Every arm replicate's samples, two-choice answers and verdicts as an Inspect eval log
# (`inspect view --log-dir results/<exp>/inspect`), with an index of the logs.
rule em_inspect:
    input:
        unpack(lambda w: em_arms.inspect_inputs(w.em, em_exp(w))),
    output:
        out_dir=directory(f"{RESULTS}/{{em}}/inspect"),
    params:
        step=f"{EM}.write_inspect",
        arms=lambda w: em_arms.arm_adapters(w.em, em_exp(w)),
        model_name=lambda w: em_exp(w).model,
        llm_judge=lambda w: em_arms.judges(em_exp(w)),
        seed=CFG.seed,
        experiment=lambda w: w.em,
    log:
        "logs/{em}/inspect.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT
