# Step 6: compliance judgments per arm, and alignment-faking reasoning on hidden scratchpads;
# per shard of the samples, then gathered into one table per arm.


rule judge_compliance:
    input:
        unpack(compliance_inputs),
    output:
        f"{RESULTS}/{{exp}}/shards/judgments/{{arm}}.compliance/{{scatteritem}}.parquet",
    params:
        judge=lambda w: as_dict(exp(w).judges.compliance),
        sampling=lambda w: as_dict(exp(w).sampling),
        engine=engine_params,
        endpoint=lambda w: endpoint_params(judge_endpoint(w, "compliance")),
        seed=CFG.seed,
    log:
        "logs/{exp}/judge_compliance_{arm}_{scatteritem}.log",
    threads: lambda w: HEAVY_THREADS if "model" in compliance_inputs(w) else 1
    resources:
        **COMPLIANCE_JOB,
    conda:
        CONDA_ENV
    script:
        "../scripts/judge_compliance.py"


rule judge_af:
    input:
        samples=samples_shard,
        model=lambda w: model_input(judge_model(w, "af_reasoning"), judge_endpoint(w, "af_reasoning")),
        code=code("alignment_faking.judge_af"),
    output:
        f"{RESULTS}/{{exp}}/shards/judgments/{{arm}}.af/{{scatteritem}}.parquet",
    params:
        judge=lambda w: as_dict(exp(w).judges.af_reasoning),
        engine=engine_params,
        endpoint=lambda w: endpoint_params(judge_endpoint(w, "af_reasoning")),
        seed=CFG.seed,
    log:
        "logs/{exp}/judge_af_{arm}_{scatteritem}.log",
    threads: lambda w: 1 if judge_endpoint(w, "af_reasoning") else HEAVY_THREADS
    resources:
        **AF_JOB,
    conda:
        CONDA_ENV
    script:
        "../scripts/judge_af.py"


rule gather_compliance:
    input:
        shards=gather.shard(
            f"{RESULTS}/{{{{exp}}}}/shards/judgments/{{{{arm}}}}.compliance/{{scatteritem}}.parquet"
        ),
        code=code("shards.gather"),
    output:
        f"{RESULTS}/{{exp}}/judgments/{{arm}}.compliance.parquet",
    params:
        schema="compliance",
    log:
        "logs/{exp}/gather_compliance_{arm}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/gather.py"


rule gather_af:
    input:
        shards=gather.shard(f"{RESULTS}/{{{{exp}}}}/shards/judgments/{{{{arm}}}}.af/{{scatteritem}}.parquet"),
        code=code("shards.gather"),
    output:
        f"{RESULTS}/{{exp}}/judgments/{{arm}}.af.parquet",
    params:
        schema="af_reasoning",
    log:
        "logs/{exp}/gather_af_{arm}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/gather.py"
