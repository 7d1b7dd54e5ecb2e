# Step 5: vLLM samples for every eval query x tier x k, per arm (adapter as a LoRA request).


def sample_inputs(w):
    inputs = {
        "queries": f"{RESULTS}/{w.exp}/queries.parquet",
        "model": model_folder(exp(w).model),
        "code": code("alignment_faking.sample"),
    }
    if ARMS[w.arm].train_set is not None:
        inputs["adapter"] = f"{RESULTS}/{w.exp}/adapters/{w.arm}"
    return inputs


rule sample:
    input:
        unpack(sample_inputs),
    output:
        f"{RESULTS}/{{exp}}/samples/{{arm}}.parquet",
    params:
        scratchpad=lambda w: exp(w).arms[w.arm].scratchpad,
        model_name=lambda w: exp(w).model,
        persona=lambda w: exp(w).persona,
        sampling=lambda w: as_dict(exp(w).sampling),
        engine=engine_params,
        seed=CFG.seed,
    log:
        "logs/{exp}/sample_{arm}.log",
    threads: HEAVY_THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    script:
        "../scripts/sample.py"
