# The model_diff experiment kind (src/alignlab/model_diff_steps.py, measurements in
# model_diff.py): the text set -> each adapter pair merged into the base -> an SAE trained on the
# base's activations at one layer -> per pair: weight change, residual-stream cosine per layer,
# the SAE on base and fine-tune, a per-layer figure -> the pairs ranked, and a summary.
# Wildcards: {md} an experiment of this kind, {md_pair} one of its pairs. A pair's adapter is
# usually another experiment's output (results/af/adapters/sdf): Snakemake builds it first.


rule md_texts:
    input:
        file=lambda w: [md_exp(w).texts.path] if md_exp(w).texts.source == "file" else [],
        code=code("model_diff_steps.make_texts"),
    output:
        f"{RESULTS}/{{md}}/texts.parquet",
    params:
        texts=lambda w: as_dict(md_exp(w).texts),
    log:
        "logs/{md}/texts.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/md_texts.py"


rule md_merge:
    input:
        model=lambda w: model_folder(md_exp(w).model),
        adapter=lambda w: md_exp(w).pairs[w.md_pair].adapter,
        code=code("model_diff_steps.merge"),
    output:
        directory(f"{RESULTS}/{{md}}/merged/{{md_pair}}"),
    log:
        "logs/{md}/merge_{md_pair}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/md_merge.py"


rule md_sae:
    input:
        texts=f"{RESULTS}/{{md}}/texts.parquet",
        model=lambda w: model_folder(md_exp(w).model),
        code=code("model_diff_steps.train_sae"),
    output:
        sae=f"{RESULTS}/{{md}}/sae/sae.pt",
        train_log=f"{RESULTS}/{{md}}/sae/train_log.parquet",
    params:
        sae=lambda w: as_dict(md_exp(w).sae),
        texts=lambda w: as_dict(md_exp(w).texts),
        batch_size=lambda w: md_exp(w).batch_size,
        device=CFG.engine.device,
        seed=CFG.seed,
    log:
        "logs/{md}/sae.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/md_sae.py"


rule md_compare:
    input:
        texts=f"{RESULTS}/{{md}}/texts.parquet",
        base=lambda w: model_folder(md_exp(w).model),
        tuned=md_tuned_folder,
        sae=f"{RESULTS}/{{md}}/sae/sae.pt",
        code=code("model_diff_steps.compare"),
    output:
        weights=f"{RESULTS}/{{md}}/pairs/{{md_pair}}/weights.parquet",
        activations=f"{RESULTS}/{{md}}/pairs/{{md_pair}}/activations.parquet",
        sae=f"{RESULTS}/{{md}}/pairs/{{md_pair}}/sae.parquet",
        figure=report(
            f"{RESULTS}/{{md}}/pairs/{{md_pair}}/layers.png",
            category="{md}",
            caption="../report/md_layers.rst",
            labels={"figure": "{md_pair}: per layer"},
        ),
    params:
        texts=lambda w: as_dict(md_exp(w).texts),
        batch_size=lambda w: md_exp(w).batch_size,
        device=CFG.engine.device,
    log:
        "logs/{md}/compare_{md_pair}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/md_compare.py"


rule md_aggregate:
    input:
        tables=lambda w: [f for p in md_exp(w).pairs for f in md_pair_files(w.md, p).values()],
        code=code("model_diff_steps.aggregate"),
    output:
        metrics=report(f"{RESULTS}/{{md}}/metrics.parquet", category="{md}", labels={"table": "metrics"}),
        summary=report(
            f"{RESULTS}/{{md}}/summary.md",
            category="{md}",
            caption="../report/summary.rst",
            labels={"table": "summary"},
        ),
    params:
        pairs=lambda w: {p: md_pair_files(w.md, p) for p in md_exp(w).pairs},
        sources=md_sources,
        base=lambda w: md_exp(w).model,
        more_steps=lambda w: md_exp(w).more_steps,
    log:
        "logs/{md}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/md_aggregate.py"
