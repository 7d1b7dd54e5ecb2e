# What `snakemake --report results/report.html` shows: the workflow description, each
# experiment's figure and summary (marked in aggregate.smk), and its tables as CSV here
# (browsers cannot show Parquet).

report: "../report/workflow.rst"


rule report_table:
    input:
        f"{RESULTS}/{{name}}/{{table}}.parquet",
        code=code("artifacts"),
    output:
        report(
            f"{RESULTS}/{{name}}/report/{{table}}.csv",
            category="{name}",
            caption="../report/table.rst",
            labels={"table": "{table}"},
        ),
    wildcard_constraints:
        name="|".join(CFG.experiments),
        table="metrics|gaps",
    log:
        "logs/{name}/report_{table}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/report_table.py"
