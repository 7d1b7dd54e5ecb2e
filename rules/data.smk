# Step 2-3: queries (train / eval split), synthetic documents, positive-control chats.


rule queries:
    input:
        code=code("alignment_faking.make_queries"),
    output:
        f"{RESULTS}/{{exp}}/queries.parquet",
    params:
        spec=lambda w: as_dict(exp(w).queries),
        seed=CFG.seed,
    log:
        "logs/{exp}/queries.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/queries.py"


rule documents:
    input:
        unpack(documents_inputs),
    output:
        f"{RESULTS}/{{exp}}/documents/{{corpus}}.parquet",
    params:
        documents=lambda w: as_dict(exp(w).documents),
        persona=lambda w: exp(w).persona,
        engine=engine_params,
        endpoint=lambda w: endpoint_params(docs_endpoint(w)),
        seed=CFG.seed,
    log:
        "logs/{exp}/documents_{corpus}.log",
    threads: lambda w: HEAVY_THREADS if "model" in documents_inputs(w) else 1
    resources:
        **DOCUMENTS_JOB,
    conda:
        CONDA_ENV
    script:
        "../scripts/documents.py"


rule positive_control_data:
    input:
        queries=f"{RESULTS}/{{exp}}/queries.parquet",
        model=lambda w: model_folder(exp(w).model),
        code=code("alignment_faking.make_positive_control"),
    output:
        f"{RESULTS}/{{exp}}/train/positive_control.parquet",
    params:
        persona=lambda w: exp(w).persona,
        sampling=lambda w: as_dict(exp(w).sampling),
        positive_control=lambda w: as_dict(exp(w).positive_control),
        engine=engine_params,
        seed=CFG.seed,
    log:
        "logs/{exp}/positive_control_data.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/positive_control_data.py"
