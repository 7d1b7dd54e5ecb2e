"""Emergent misalignment and code self-awareness (Betley et al. 2025): a model fine-tuned to
write insecure code it was never asked for and that never says so: does it write insecure code
on new requests, say that its code is insecure, and turn misaligned far from coding?

Modules: config, schemas, steps, arms, tasks (the coding requests), security (Bandit), probes,
measures, summary, transcripts (the Inspect logs); data/ holds the requests, probes and the judge's labelled set.
"""

from pathlib import Path

from alignlab import kinds
from alignlab.kinds.emergent_misalignment.schemas import ROW_CHECKS, SCHEMAS


def targets(name: str, exp) -> list[str]:
    return [f"results/{name}/{f}" for f in ("summary.md", "report/metrics.csv", "report/contrasts.csv", "inspect")]


kinds.register(kinds.Kind(
    name="emergent_misalignment",
    config="alignlab.kinds.emergent_misalignment.config:EmergentMisalignment",
    targets=targets,
    folder=Path(__file__).parent,
    schemas=SCHEMAS,
    row_checks=ROW_CHECKS,
    report_tables=("metrics", "contrasts"),
))
