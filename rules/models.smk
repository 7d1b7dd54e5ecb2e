# Step 1: resolve each model named in config to a Hugging Face folder (vLLM and PEFT read it).


rule materialize_model:
    input:
        code=code("models.build"),
        chat_template=chat_template_file,
    output:
        folder=directory(f"{RESULTS}/models/{{model}}/hf"),
        index=f"{RESULTS}/models/{{model}}/model.parquet",
    params:
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
        "../scripts/materialize_model.py"
