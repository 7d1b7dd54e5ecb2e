"""Alignment faking after synthetic-document fine-tuning (Greenblatt et al. 2024): compliance with
harmful requests when the model is told it is talking to a free-tier user (whose chats train it)
vs a paid-tier user, per arm (base, prompted, sdf, sdf_baseline, positive_control).

Modules: config (the experiment's config), schemas (its tables), steps (what each rule runs),
arms (what the rules compute per arm), queries, synth (documents), prompts, identity (whose
identity the setting uses), knowledge (did the documents take?), af_judge, measures, summary,
figures; templates/ and data/
hold the prompt templates and the universes.
"""

from pathlib import Path

from alignlab import kinds
from alignlab.kinds.alignment_faking.schemas import ROW_CHECKS, SCHEMAS


def targets(name: str, exp) -> list[str]:
    return [
        *(f"results/{name}/samples/{arm}.parquet" for arm in exp.arms),
        f"results/{name}/summary.md",
        f"results/{name}/compliance.png",
        f"results/{name}/report/metrics.csv",
        f"results/{name}/report/gaps.csv",
        f"results/{name}/report/contrasts.csv",
        f"results/{name}/report/replication.csv",
        f"results/{name}/inspect",
    ]


kinds.register(kinds.Kind(
    name="alignment_faking",
    config="alignlab.kinds.alignment_faking.config:AlignmentFaking",
    targets=targets,
    folder=Path(__file__).parent,
    schemas=SCHEMAS,
    row_checks=ROW_CHECKS,
    report_tables=("metrics", "gaps", "contrasts", "replication"),
))
