# The token_count example kind's rules (tests/example_kind): one rule, through the shared step script.
TC_EXPERIMENTS = experiments_of("token_count")


wildcard_constraints:
    tc=one_of(TC_EXPERIMENTS),


rule tc_count:
    input:
        model_dir=lambda w: model_folder(TC_EXPERIMENTS[w.tc].model),
    output:
        out=f"{RESULTS}/{{tc}}/counts.parquet",
        summary_out=summary_report("tc"),
    params:
        step="example_kind.steps.count",
        texts=lambda w: TC_EXPERIMENTS[w.tc].texts,
        experiment=lambda w: w.tc,
    log:
        "logs/{tc}/count.log",
    resources:
        **small_job(),
    script:
        STEP_SCRIPT
