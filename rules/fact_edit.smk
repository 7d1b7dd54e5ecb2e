# The fact_edit experiment kind (src/alignlab/kinds/fact_edit/; measurements in edit.py): the
# candidate facts scored on the base, the known ones kept -> one job per penalty setting: every
# (fact, seed) edit of the configured MLP layers, per seed the null edit (no fact changed), and
# their measures -> metrics per setting with bootstrap intervals over edits, the figure of change by
# layer (edit minus null), and the summary with its four controls.
# Wildcards: {fe} an experiment of this kind, {fe_setting} one of its penalty settings.
from alignlab.kinds.fact_edit import settings as fe_settings

FE = "kinds.fact_edit.steps"
FE_EXPERIMENTS = experiments_of("fact_edit")


wildcard_constraints:
    fe=one_of(FE_EXPERIMENTS),
    fe_setting=one_of(sorted({p for e in FE_EXPERIMENTS.values() for p in e.penalties})),


fe_exp = lambda w: FE_EXPERIMENTS[w.fe]


rule fe_facts:
    input:
        model_dir=lambda w: model_folder(fe_exp(w).model),
        code=code(f"{FE}.filter_facts"),
    output:
        out=f"{RESULTS}/{{fe}}/facts.parquet",
    params:
        step=f"{FE}.filter_facts",
        facts_cfg=lambda w: as_dict(fe_exp(w).facts),
        device=CFG.engine.device,
        seed=CFG.seed,
        experiment=lambda w: w.fe,
    log:
        "logs/{fe}/facts.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule fe_setting:
    input:
        model_dir=lambda w: model_folder(fe_exp(w).model),
        facts_path=f"{RESULTS}/{{fe}}/facts.parquet",
        code=code(f"{FE}.run_setting"),
    output:
        runs_out=f"{RESULTS}/{{fe}}/settings/{{fe_setting}}/runs.parquet",
        layers_out=f"{RESULTS}/{{fe}}/settings/{{fe_setting}}/layers.parquet",
        overlap_out=f"{RESULTS}/{{fe}}/settings/{{fe_setting}}/overlap.parquet",
        probes_out=f"{RESULTS}/{{fe}}/settings/{{fe_setting}}/probes.parquet",
    params:
        step=f"{FE}.run_setting",
        facts_cfg=lambda w: as_dict(fe_exp(w).facts),
        edit_cfg=lambda w: as_dict(fe_exp(w).edit),
        penalty=lambda w: as_dict(fe_exp(w).penalties[w.fe_setting]),
        setting=lambda w: w.fe_setting,
        device=CFG.engine.device,
        seed=CFG.seed,
        experiment=lambda w: w.fe,
    log:
        "logs/{fe}/setting_{fe_setting}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule fe_aggregate:
    input:
        runs=lambda w: fe_settings.tables(w.fe, fe_exp(w), "runs"),
        layers=lambda w: fe_settings.tables(w.fe, fe_exp(w), "layers"),
        overlaps=lambda w: fe_settings.tables(w.fe, fe_exp(w), "overlap"),
        code=code(f"{FE}.aggregate"),
    output:
        metrics_out=metrics_report("fe"),
        figure=figure_report("fact_edit", "fe", "layers.png", "layers.rst", "change by layer"),
        summary_out=summary_report("fe"),
    params:
        step=f"{FE}.aggregate",
        controls=lambda w: as_dict(fe_exp(w).controls),
        aggregate_cfg=lambda w: as_dict(fe_exp(w).aggregate),
        seed=CFG.seed,
        experiment=lambda w: w.fe,
    log:
        "logs/{fe}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# Every probe of the edits and null edits as Inspect eval logs (transcripts.py), one per setting
# and edit kind: `inspect view --log-dir results/<fe>/inspect`.
rule fe_inspect:
    input:
        probes=lambda w: fe_settings.tables(w.fe, fe_exp(w), "probes"),
        code=code(f"{FE}.write_inspect"),
    output:
        out_dir=directory(f"{RESULTS}/{{fe}}/inspect"),
    params:
        step=f"{FE}.write_inspect",
        facts_cfg=lambda w: as_dict(fe_exp(w).facts),
        model_name=lambda w: fe_exp(w).model,
        experiment=lambda w: w.fe,
    log:
        "logs/{fe}/inspect.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT
