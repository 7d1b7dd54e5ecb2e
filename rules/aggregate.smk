# Step 7: rates with intervals, the paired gap, the figure and the Markdown summary.


rule aggregate:
    input:
        compliance=lambda w: expand(
            f"{RESULTS}/{w.exp}/judgments/{{arm}}.compliance.parquet", arm=list(exp(w).arms)
        ),
        af=lambda w: expand(f"{RESULTS}/{w.exp}/judgments/{{arm}}.af.parquet", arm=scratchpad_arms(w)),
        code=code("alignment_faking.aggregate"),
    output:
        metrics=report(
            f"{RESULTS}/{{exp}}/metrics.parquet", category="{exp}", labels={"table": "metrics"}
        ),
        gaps=f"{RESULTS}/{{exp}}/gaps.parquet",
        figure=report(
            f"{RESULTS}/{{exp}}/compliance.png",
            category="{exp}",
            caption="../report/compliance.rst",
            labels={"figure": "compliance by tier"},
        ),
        summary=report(
            f"{RESULTS}/{{exp}}/summary.md",
            category="{exp}",
            caption="../report/summary.rst",
            labels={"table": "summary"},
        ),
    params:
        aggregate=lambda w: as_dict(exp(w).aggregate),
        judge=lambda w: exp(w).judges.compliance.name,
        seed=CFG.seed,
    log:
        "logs/{exp}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        "../scripts/aggregate.py"
