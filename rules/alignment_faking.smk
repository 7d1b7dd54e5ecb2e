# The alignment_faking experiment kind (src/alignlab/kinds/alignment_faking/): queries (train /
# eval split) -> synthetic documents and positive-control chats -> a LoRA adapter per fine-tuned
# arm -> vLLM samples of every arm per shard of the eval queries (one engine per shard) ->
# compliance and alignment-faking judgments per shard, gathered per arm -> rates, the paired
# gap, the figure and the summary. Wildcards: {exp} an experiment of this kind, {arm} an arm its
# config composes, {adapter} one training replicate of an arm's weights ("sdf", "sdf.r1", ...;
# arms on the same weights share it), {corpus} a document set.
import dataclasses

from alignlab.kinds.alignment_faking import arms as af_arms
from alignlab.kinds.alignment_faking.steps import DOCUMENT_SETS

AF = "kinds.alignment_faking.steps"
AF_EXPERIMENTS = experiments_of("alignment_faking")


wildcard_constraints:
    exp=one_of(AF_EXPERIMENTS),
    arm=one_of(sorted({a for e in AF_EXPERIMENTS.values() for a in e.arms})),
    adapter=af_arms.ADAPTER,
    corpus="|".join(DOCUMENT_SETS),


localrules:
    gather_samples,
    gather_compliance,
    gather_af,


exp = lambda w: AF_EXPERIMENTS[w.exp]


rule queries:
    input:
        code=code(f"{AF}.make_queries"),
    output:
        out=f"{RESULTS}/{{exp}}/queries.parquet",
    params:
        step=f"{AF}.make_queries",
        spec=lambda w: as_dict(exp(w).queries),
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/queries.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule documents:
    input:
        unpack(lambda w: af_arms.documents_inputs(w.exp, exp(w))),
    output:
        out=f"{RESULTS}/{{exp}}/documents/{{corpus}}.parquet",
    params:
        step=f"{AF}.make_documents",
        corpus=lambda w: w.corpus,
        documents=lambda w: as_dict(exp(w).documents),
        persona=lambda w: exp(w).persona,
        engine_cfg=engine_params,
        endpoint=lambda w: endpoint_params(exp(w).documents.llm.endpoint),
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/documents_{corpus}.log",
    threads: lambda w: HEAVY_THREADS if exp(w).documents_model() else 1
    resources:
        **model_job_if(AF_EXPERIMENTS, lambda e: e.documents_model()),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule positive_control_data:
    input:
        unpack(lambda w: af_arms.positive_control_inputs(w.exp, exp(w))),
    output:
        out=f"{RESULTS}/{{exp}}/train/positive_control.parquet",
    params:
        step=f"{AF}.make_positive_control",
        persona=lambda w: exp(w).persona,
        sampling=lambda w: as_dict(exp(w).sampling),
        positive_control=lambda w: as_dict(exp(w).positive_control),
        keep_judge=lambda w: exp(w).keep_judge(),
        judge=lambda w: af_arms.keep_judge_settings(exp(w)),
        endpoint=lambda w: endpoint_params(exp(w).judges.compliance.endpoint) if exp(w).keep_judge() == "rubric" else None,
        engine_cfg=engine_params,
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/positive_control_data.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# The weak positive control: the positive control's chats, most of them made tier-independent.
rule weak_positive_control_data:
    input:
        chats_path=f"{RESULTS}/{{exp}}/train/positive_control.parquet",
        code=code(f"{AF}.make_weak_positive_control"),
    output:
        out=f"{RESULTS}/{{exp}}/train/weak_positive_control.parquet",
    params:
        step=f"{AF}.make_weak_positive_control",
        positive_control=lambda w: as_dict(exp(w).positive_control),
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/weak_positive_control_data.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# Whose training is it? (identity.py): with `identity.source: self`, the name and developer the
# model gives for itself, which the documents, prompts and knowledge questions then use.
rule identity:
    input:
        unpack(lambda w: af_arms.identity_rule_inputs(w.exp, exp(w))),
    output:
        out=f"{RESULTS}/{{exp}}/identity.parquet",
    params:
        step="kinds.alignment_faking.identity.probe_identity",
        persona=lambda w: exp(w).persona,
        identity=lambda w: as_dict(exp(w).identity),
        device=CFG.engine.device,
    log:
        "logs/{exp}/identity.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule finetune:
    input:
        train_path=lambda w: af_arms.train_set_path(w.exp, w.adapter),
        model_dir=lambda w: model_folder(exp(w).model),
        code=code("finetune.train_step"),
    output:
        out_dir=directory(f"{RESULTS}/{{exp}}/adapters/{{adapter}}"),
        log_path=f"{RESULTS}/{{exp}}/adapters/{{adapter}}.train_log.parquet",
    params:
        step="finetune.train_step",
        documents=lambda w: af_arms.trains_on_documents(w.adapter),
        lora=lambda w: af_arms.lora_params(exp(w), w.adapter),
        device=CFG.engine.device,
        seed=lambda w: af_arms.finetune_seed(CFG.seed, w.exp, w.adapter),
    log:
        "logs/{exp}/finetune_{adapter}.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule sample:
    input:
        unpack(lambda w: af_arms.identity_inputs(w.exp, exp(w))),
        queries_path=f"{RESULTS}/{{exp}}/queries.parquet",
        model_dir=lambda w: model_folder(exp(w).model),
        adapter_dirs=lambda w: af_arms.adapter_paths(w.exp, exp(w)),
        code=code(f"{AF}.sample"),
    output:
        out=f"{RESULTS}/{{exp}}/shards/samples/{{scatteritem}}.parquet",
    params:
        step=f"{AF}.sample",
        arms=lambda w: af_arms.sample_arms(w.exp, exp(w)),
        model_name=lambda w: exp(w).model,
        persona=lambda w: exp(w).persona,
        sampling=lambda w: as_dict(exp(w).sampling),
        engine_cfg=sample_engine_params,
        seed=CFG.seed,
        experiment=lambda w: w.exp,
        shard=lambda w: w.scatteritem,
    log:
        "logs/{exp}/sample_{scatteritem}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule judge_compliance:
    input:
        unpack(lambda w: af_arms.compliance_inputs(w.exp, exp(w), w.scatteritem)),
    output:
        out=f"{RESULTS}/{{exp}}/shards/judgments/{{arm}}.compliance/{{scatteritem}}.parquet",
    params:
        step=f"{AF}.judge_compliance",
        arm=lambda w: w.arm,
        judge=lambda w: as_dict(exp(w).judges.compliance),
        sampling=lambda w: af_arms.arm_sampling(exp(w), w.arm),
        engine_cfg=engine_params,
        endpoint=lambda w: endpoint_params(exp(w).judges.compliance.endpoint),
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/judge_compliance_{arm}_{scatteritem}.log",
    threads: lambda w: HEAVY_THREADS if exp(w).compliance_model() else 1
    resources:
        **model_job_if(AF_EXPERIMENTS, lambda e: e.compliance_model()),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule judge_af:
    input:
        unpack(lambda w: af_arms.af_judge_inputs(w.exp, exp(w), w.scatteritem)),
    output:
        out=f"{RESULTS}/{{exp}}/shards/judgments/{{arm}}.af/{{scatteritem}}.parquet",
    params:
        step=f"{AF}.judge_af",
        arm=lambda w: w.arm,
        judge=lambda w: as_dict(exp(w).judges.af_reasoning),
        engine_cfg=engine_params,
        endpoint=lambda w: endpoint_params(exp(w).judges.af_reasoning.endpoint),
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/judge_af_{arm}_{scatteritem}.log",
    threads: lambda w: HEAVY_THREADS if exp(w).af_judge_model() else 1
    resources:
        **model_job_if(AF_EXPERIMENTS, lambda e: e.af_judge_model()),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# Every judge the experiment uses, scored on its labelled set's test split.
rule validate_compliance_judges:
    input:
        unpack(lambda w: af_arms.validation_inputs(w.exp, exp(w), "compliance")),
    output:
        out=f"{RESULTS}/{{exp}}/judge_validation/compliance.parquet",
    params:
        step=f"{AF}.validate_compliance_judges",
        judge=lambda w: as_dict(exp(w).judges.compliance),
        names=lambda w: exp(w).validated_judges(),
        validation=lambda w: as_dict(exp(w).judges.validation.compliance),
        sampling=lambda w: as_dict(exp(w).sampling),
        engine_cfg=engine_params,
        endpoint=lambda w: endpoint_params(exp(w).judges.compliance.endpoint),
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/validate_compliance_judges.log",
    threads: lambda w: HEAVY_THREADS if exp(w).validation_model() else 1
    resources:
        **model_job_if(AF_EXPERIMENTS, lambda e: e.validation_model()),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule validate_af_judge:
    input:
        unpack(lambda w: af_arms.validation_inputs(w.exp, exp(w), "af_reasoning")),
    output:
        out=f"{RESULTS}/{{exp}}/judge_validation/af_reasoning.parquet",
    params:
        step=f"{AF}.validate_af_judge",
        judge=lambda w: as_dict(exp(w).judges.af_reasoning),
        validation=lambda w: as_dict(exp(w).judges.validation.af_reasoning),
        engine_cfg=engine_params,
        endpoint=lambda w: endpoint_params(exp(w).judges.af_reasoning.endpoint),
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/validate_af_judge.log",
    threads: lambda w: HEAVY_THREADS if exp(w).af_judge_model() else 1
    resources:
        **model_job_if(AF_EXPERIMENTS, lambda e: e.af_judge_model()),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# Gathering a sharded table: one rule per table, the same step.
rule gather_samples:
    input:
        paths=gather.shard(f"{RESULTS}/{{{{exp}}}}/shards/samples/{{scatteritem}}.parquet"),
        code=code("shards.gather"),
    output:
        out=f"{RESULTS}/{{exp}}/samples/{{arm}}.parquet",
    params:
        step="shards.gather",
        schema="samples",
        arm=lambda w: w.arm,
    log:
        "logs/{exp}/gather_samples_{arm}.log",
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


use rule gather_samples as gather_compliance with:
    input:
        paths=gather.shard(
            f"{RESULTS}/{{{{exp}}}}/shards/judgments/{{{{arm}}}}.compliance/{{scatteritem}}.parquet"
        ),
        code=code("shards.gather"),
    output:
        out=f"{RESULTS}/{{exp}}/judgments/{{arm}}.compliance.parquet",
    params:
        step="shards.gather",
        schema="compliance",
    log:
        "logs/{exp}/gather_compliance_{arm}.log",


use rule gather_samples as gather_af with:
    input:
        paths=gather.shard(f"{RESULTS}/{{{{exp}}}}/shards/judgments/{{{{arm}}}}.af/{{scatteritem}}.parquet"),
        code=code("shards.gather"),
    output:
        out=f"{RESULTS}/{{exp}}/judgments/{{arm}}.af.parquet",
    params:
        step="shards.gather",
        schema="af_reasoning",
    log:
        "logs/{exp}/gather_af_{arm}.log",


rule aggregate:
    input:
        unpack(lambda w: af_arms.identity_inputs(w.exp, exp(w))),
        compliance_paths=lambda w: expand(
            f"{RESULTS}/{w.exp}/judgments/{{arm}}.compliance.parquet", arm=list(exp(w).arms)
        ),
        af_paths=lambda w: expand(f"{RESULTS}/{w.exp}/judgments/{{arm}}.af.parquet", arm=exp(w).scratchpad_arms()),
        validation_paths=lambda w: af_arms.validation_outputs(w.exp, exp(w)),
        knowledge_paths=lambda w: af_knowledge.outputs(w.exp, exp(w)),
        model_info=lambda w: f"{RESULTS}/models/{exp(w).model}/model.parquet",
        code=code(f"{AF}.aggregate"),
    output:
        metrics_out=metrics_report("exp"),
        gaps_out=f"{RESULTS}/{{exp}}/gaps.parquet",
        contrasts_out=f"{RESULTS}/{{exp}}/contrasts.parquet",
        replication_out=f"{RESULTS}/{{exp}}/replication.parquet",
        figure_out=figure_report("alignment_faking", "exp", "compliance.png", "compliance.rst", "compliance by tier"),
        summary_out=summary_report("exp"),
    params:
        step=f"{AF}.aggregate",
        aggregate_cfg=lambda w: as_dict(exp(w).aggregate),
        judge=lambda w: exp(w).judges.compliance.name,
        keep_judge=lambda w: exp(w).keep_judge(),
        min_accuracy=lambda w: exp(w).judges.min_accuracy,
        sizes=lambda w: {"k": exp(w).sampling.k, "n_eval": exp(w).queries.n_eval},
        arm_specs=lambda w: {a: dataclasses.asdict(exp(w).arm(a)) for a in exp(w).arms},
        contrast_plan=lambda w: exp(w).contrast_plan(),
        persona=lambda w: exp(w).persona,
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# Every arm replicate's samples and verdicts as an Inspect eval log (`inspect view --log-dir
# results/<exp>/inspect`), with an index of the logs.
rule af_inspect:
    input:
        unpack(lambda w: af_arms.identity_inputs(w.exp, exp(w))),
        samples_paths=lambda w: expand(f"{RESULTS}/{w.exp}/samples/{{arm}}.parquet", arm=list(exp(w).arms)),
        compliance_paths=lambda w: expand(f"{RESULTS}/{w.exp}/judgments/{{arm}}.compliance.parquet", arm=list(exp(w).arms)),
        af_paths=lambda w: expand(f"{RESULTS}/{w.exp}/judgments/{{arm}}.af.parquet", arm=exp(w).scratchpad_arms()),
        code=code(f"{AF}.write_inspect"),
    output:
        out_dir=directory(f"{RESULTS}/{{exp}}/inspect"),
    params:
        step=f"{AF}.write_inspect",
        arms=lambda w: af_arms.sample_arms(w.exp, exp(w)),
        persona=lambda w: exp(w).persona,
        sampling=lambda w: as_dict(exp(w).sampling),
        model_name=lambda w: exp(w).model,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/inspect.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# The knowledge probe ("did the documents take?", knowledge.py): two-choice questions about the
# setting's facts scored by log-probability on base, every sdf and every sdf_baseline replicate,
# and the sdf - sdf_baseline accuracy contrast. Only for experiments with both document arms.
from alignlab.kinds.alignment_faking import knowledge as af_knowledge


rule knowledge:
    input:
        unpack(lambda w: af_knowledge.rule_inputs(w.exp, exp(w))),
    output:
        out=f"{RESULTS}/{{exp}}/knowledge.parquet",
        contrast_out=f"{RESULTS}/{{exp}}/knowledge_contrast.parquet",
    params:
        step=f"{AF}.score_knowledge",
        instances=lambda w: af_knowledge.instances(w.exp, exp(w)),
        persona=lambda w: exp(w).persona,
        knowledge=lambda w: as_dict(exp(w).knowledge),
        universe=lambda w: exp(w).documents.universe,
        aggregate_cfg=lambda w: as_dict(exp(w).aggregate),
        device=CFG.engine.device,
        seed=CFG.seed,
        experiment=lambda w: w.exp,
    log:
        "logs/{exp}/knowledge.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT
