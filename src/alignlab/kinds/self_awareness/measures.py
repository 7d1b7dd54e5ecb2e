"""Self-awareness measures per arm: Wilson intervals for yes/no measures, a bootstrap mean
for the rest (the "sa_metrics" table)."""

from __future__ import annotations

import numpy as np
import polars as pl

from alignlab.stats import bootstrap_mean, frame, wilson

BINARY_MEASURES = ("spells", "names_word", "names_rule", "risky_choice", "seeking_word", "averse_word")


def self_awareness_metrics(
    judgments: pl.DataFrame, experiment: str, arm_order: list[str], *, n_resamples: int, seed: int,
    confidence: float = 0.95,
) -> pl.DataFrame:
    """One row per task x arm x measure x target: rates of yes/no measures with Wilson intervals,
    means of the others (line accuracy, the 0-100 self-report) with bootstrap intervals. Rows
    whose value could not be parsed are left out of n."""
    rows = []
    groups = judgments.filter(pl.col("value").is_not_null()).group_by(
        "task", "arm", "measure", "target", maintain_order=True
    ).agg(pl.col("value"))
    rank = {a: i for i, a in enumerate(arm_order)}
    for g in sorted(groups.iter_rows(named=True), key=lambda r: (r["task"], rank.get(r["arm"], 99), r["measure"], r["target"])):
        values = np.asarray(g["value"], dtype=float)
        if g["measure"] in BINARY_MEASURES:
            value, lo, hi = wilson(int(values.sum()), values.size, confidence)
            interval = "wilson"
        else:
            value, lo, hi = bootstrap_mean(values, n_resamples, seed, confidence)
            interval = "bootstrap"
        rows.append({"experiment": experiment, "task": g["task"], "arm": g["arm"], "measure": g["measure"],
                     "target": g["target"], "n": int(values.size), "value": value, "lo": lo, "hi": hi,
                     "interval": interval})
    return frame(rows, "sa_metrics")
