# Step 5: vLLM samples for every eval query x tier x k, per arm (adapter as a LoRA request or
# merged), one job per shard of the eval queries, then gathered into one table per arm.


rule sample:
    input:
        unpack(sample_inputs),
    output:
        f"{RESULTS}/{{exp}}/shards/samples/{{arm}}/{{scatteritem}}.parquet",
    params:
        scratchpad=lambda w: exp(w).arms[w.arm].scratchpad,
        model_name=lambda w: exp(w).model,
        persona=lambda w: exp(w).persona,
        sampling=lambda w: as_dict(exp(w).sampling),
        engine=sample_engine_params,
        seed=CFG.seed,
    log:
        "logs/{exp}/sample_{arm}_{scatteritem}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/sample.py"


rule gather_samples:
    input:
        shards=gather.shard(f"{RESULTS}/{{{{exp}}}}/shards/samples/{{{{arm}}}}/{{scatteritem}}.parquet"),
        code=code("shards.gather"),
    output:
        f"{RESULTS}/{{exp}}/samples/{{arm}}.parquet",
    params:
        schema="samples",
    log:
        "logs/{exp}/gather_samples_{arm}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/gather.py"
