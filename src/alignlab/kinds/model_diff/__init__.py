"""Where a fine-tune changed a model: per (base, fine-tune) pair, the weight change, the
residual-stream cosine per layer, and a sparse autoencoder's transfer from base to fine-tune.

Modules: config, schemas, steps, diff (the measurements), summary, figures; data/ holds the
packaged text set.
"""

from pathlib import Path

from alignlab import kinds
from alignlab.kinds.model_diff.schemas import ROW_CHECKS, SCHEMAS


def targets(name: str, exp) -> list[str]:
    return [
        *(f"results/{name}/{f}" for f in ("summary.md", "report/metrics.csv", "report/replication.csv")),
        *(f"results/{name}/pairs/{pair}/layers.png" for pair in exp.all_pairs()),
    ]


kinds.register(kinds.Kind(
    name="model_diff",
    config="alignlab.kinds.model_diff.config:ModelDiff",
    targets=targets,
    folder=Path(__file__).parent,
    schemas=SCHEMAS,
    row_checks=ROW_CHECKS,
    report_tables=("metrics", "replication"),
))
