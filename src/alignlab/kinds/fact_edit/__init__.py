"""Localized fact edits: a fact the base model knows is changed by training only a few MLP layers,
under L1 (proximal) / L2 penalties on the weight change, each edit beside a null edit that changes
no fact; efficacy, specificity on held-out facts and unrelated text, and whether the neurons the
changed fact moved are the same across seeds and facts.

Modules: config, schemas, steps, edit (the edit and its measures), summary, figures, transcripts
(the probes as Inspect logs); data/
holds the athletes and templates.
"""

from pathlib import Path

from alignlab import kinds
from alignlab.kinds.fact_edit.schemas import SCHEMAS


def targets(name: str, exp) -> list[str]:
    return [f"results/{name}/{f}" for f in ("summary.md", "layers.png", "report/metrics.csv", "inspect")]


kinds.register(kinds.Kind(
    name="fact_edit",
    config="alignlab.kinds.fact_edit.config:FactEdit",
    targets=targets,
    folder=Path(__file__).parent,
    schemas=SCHEMAS,
    report_tables=("metrics",),
))
