# Step 1: resolve each model named in config to a Hugging Face folder (vLLM and PEFT read it).


rule materialize_model:
    input:
        # the chat template file a model names is source the step reads, like its code
        code=lambda w: code("models.build") + chat_template_file(w),
    output:
        folder=directory(f"{RESULTS}/models/{{model}}/hf"),
        index=f"{RESULTS}/models/{{model}}/model.parquet",
    params:
        step="models.build",
        name=lambda w: w.model,
        spec=lambda w: as_dict(CFG.models[w.model]),
    log:
        "logs/models/{model}.log",
    cache: "omit-software"
    threads: HEAVY_THREADS
    resources:
        **model_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT
