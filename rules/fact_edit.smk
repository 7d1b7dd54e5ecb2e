# The fact_edit experiment kind (src/alignlab/fact_edit_steps.py, measurements
# in fact_edit.py): the candidate facts scored on the base, the known ones kept -> one job per
# penalty setting: every (fact, seed) edit of the configured MLP layers and its measures ->
# metrics per setting, the figure of change by layer, and the summary.
# Wildcards: {fe} an experiment of this kind, {fe_setting} one of its penalty settings.


rule fe_facts:
    input:
        model=lambda w: model_folder(fe_exp(w).model),
        code=code("fact_edit_steps.filter_facts"),
    output:
        f"{RESULTS}/{{fe}}/facts.parquet",
    params:
        facts=lambda w: as_dict(fe_exp(w).facts),
        device=CFG.engine.device,
    log:
        "logs/{fe}/facts.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/fe_facts.py"


rule fe_setting:
    input:
        model=lambda w: model_folder(fe_exp(w).model),
        facts=f"{RESULTS}/{{fe}}/facts.parquet",
        code=code("fact_edit_steps.run_setting"),
    output:
        runs=f"{RESULTS}/{{fe}}/settings/{{fe_setting}}/runs.parquet",
        layers=f"{RESULTS}/{{fe}}/settings/{{fe_setting}}/layers.parquet",
        overlap=f"{RESULTS}/{{fe}}/settings/{{fe_setting}}/overlap.parquet",
    params:
        facts=lambda w: as_dict(fe_exp(w).facts),
        edit=lambda w: as_dict(fe_exp(w).edit),
        penalty=lambda w: as_dict(fe_exp(w).penalties[w.fe_setting]),
        device=CFG.engine.device,
        seed=CFG.seed,
    log:
        "logs/{fe}/setting_{fe_setting}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        "../scripts/fe_setting.py"


rule fe_aggregate:
    input:
        tables=lambda w: [f for s in fe_exp(w).penalties for f in fe_setting_files(w.fe, s).values()],
        code=code("fact_edit_steps.aggregate"),
    output:
        metrics=report(f"{RESULTS}/{{fe}}/metrics.parquet", category="{fe}", labels={"table": "metrics"}),
        figure=report(
            f"{RESULTS}/{{fe}}/layers.png",
            category="{fe}",
            caption="../report/fe_layers.rst",
            labels={"figure": "change by layer"},
        ),
        summary=report(
            f"{RESULTS}/{{fe}}/summary.md",
            category="{fe}",
            caption="../report/summary.rst",
            labels={"table": "summary"},
        ),
    params:
        settings=lambda w: {s: fe_setting_files(w.fe, s) for s in fe_exp(w).penalties},
    log:
        "logs/{fe}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/fe_aggregate.py"
