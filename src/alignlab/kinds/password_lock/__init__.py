"""Password-locked models (Greenblatt et al. 2024, "Stress-testing capability elicitation"): a
model trained to solve a task only when a password is in the prompt, then unlocked by
fine-tuning on a few strong (or weak) samples without it.

Modules: config, schemas, steps, arithmetic (the task), toy (the small from-scratch model),
summary, figures, transcripts (the predictions as Inspect logs).
"""

from pathlib import Path

from alignlab import kinds
from alignlab.kinds.password_lock.schemas import ROW_CHECKS, SCHEMAS


def targets(name: str, exp) -> list[str]:
    return [f"results/{name}/{f}"
            for f in ("summary.md", "unlock.png", "report/metrics.csv", "report/contrasts.csv", "inspect")]


kinds.register(kinds.Kind(
    name="password_lock",
    config="alignlab.kinds.password_lock.config:PasswordLock",
    targets=targets,
    folder=Path(__file__).parent,
    schemas=SCHEMAS,
    row_checks=ROW_CHECKS,
    report_tables=("metrics", "contrasts"),
))
