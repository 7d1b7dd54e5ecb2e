# Step 5: vLLM samples for every eval query x tier x k of every arm, one job (one engine) per
# shard of the eval queries serving all arms of the experiment's model; gathered per arm.


rule sample:
    input:
        unpack(sample_inputs),
    output:
        f"{RESULTS}/{{exp}}/shards/samples/{{scatteritem}}.parquet",
    params:
        arms=sample_arms,
        model_name=lambda w: exp(w).model,
        persona=lambda w: exp(w).persona,
        sampling=lambda w: as_dict(exp(w).sampling),
        engine=sample_engine_params,
        seed=CFG.seed,
    log:
        "logs/{exp}/sample_{scatteritem}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(VLLM_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/sample.py"


rule gather_samples:
    input:
        shards=gather.shard(f"{RESULTS}/{{{{exp}}}}/shards/samples/{{scatteritem}}.parquet"),
        code=code("shards.gather"),
    output:
        f"{RESULTS}/{{exp}}/samples/{{arm}}.parquet",
    params:
        schema="samples",
        arm=lambda w: w.arm,
    log:
        "logs/{exp}/gather_samples_{arm}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/gather.py"
