"""Behavioural self-awareness (Betley et al. 2025): after fine-tuning on a behaviour the data never
names (acrostic answers, risky or cautious choices), does the model describe that behaviour?

Modules: config, schemas, steps, acrostic, risk, measures, summary, figures, transcripts; data/ holds the
questions, topics and self-report prompts.
"""

from pathlib import Path

from alignlab import kinds
from alignlab.kinds.self_awareness.schemas import ROW_CHECKS, SCHEMAS


def targets(name: str, exp) -> list[str]:
    return [f"results/{name}/{f}" for f in ("summary.md", "acrostic.png", "risk.png", "report/metrics.csv",
                                                    "report/contrasts.csv", "inspect")]


kinds.register(kinds.Kind(
    name="self_awareness",
    config="alignlab.kinds.self_awareness.config:SelfAwareness",
    targets=targets,
    folder=Path(__file__).parent,
    schemas=SCHEMAS,
    row_checks=ROW_CHECKS,
    report_tables=("metrics", "contrasts"),
))
