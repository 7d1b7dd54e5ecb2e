# What `snakemake --report results/report.html` shows: the workflow description, each
# experiment's figure and summary (marked in its kind's aggregate rule), and its tables as CSV here
# (browsers cannot show Parquet).

report: "../report/workflow.rst"


rule report_table:
    input:
        path=f"{RESULTS}/{{name}}/{{table}}.parquet",
        code=code("artifacts"),
    output:
        out=report(
            f"{RESULTS}/{{name}}/report/{{table}}.csv",
            category="{name}",
            caption="../report/table.rst",
            labels={"table": "{table}"},
        ),
    wildcard_constraints:
        name="|".join(CFG.experiments),
        table="|".join(sorted({t for kind in KINDS.values() for t in kind.report_tables})),
    params:
        step="artifacts.to_csv",
    log:
        "logs/{name}/report_{table}.log",
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


# A page of example transcripts per experiment that writes Inspect logs (see
# alignlab/transcript_examples.py), in the report under the experiment.
rule transcript_examples:
    input:
        log_dir=f"{RESULTS}/{{name}}/inspect",
        code=code("transcript_examples.write_examples"),
    output:
        out=report(
            f"{RESULTS}/{{name}}/report/transcripts.html",
            category="{name}",
            caption="../report/transcripts.rst",
            labels={"table": "example transcripts"},
        ),
    wildcard_constraints:
        name="|".join(CFG.experiments),
    params:
        step="transcript_examples.write_examples",
        seed=CFG.seed,
        experiment=lambda w: w.name,
    log:
        "logs/{name}/transcript_examples.log",
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT
