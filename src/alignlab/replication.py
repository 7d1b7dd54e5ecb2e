"""Our figures beside published ones: the replication card (replication_card.csv, published
reference results with where each was read) and the verdict of each comparison.

A comparison is "comparable" only when the card's setting is the one our figure measures and the
published model's size is known and within a factor of `SIZE_FACTOR` of ours; otherwise the
verdict says why not. A kind names, per metric it reports, the card setting and metric it
matches (its `CARD` mapping); shared code names no kind.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

# The package files this module reads (see codedeps: editing one reruns the steps that run it).
DATA_FILES = ("replication_card.csv",)

CARD = Path(__file__).parent / "replication_card.csv"
COLUMNS = ("source", "kind", "model", "model_params_b", "setting", "metric", "value", "lo", "hi",
           "n", "locator")
SIZE_FACTOR = 2.0


def read_card(path: Path = CARD) -> pl.DataFrame:
    card = pl.read_csv(path, infer_schema_length=0)  # every column as text, then typed below
    missing = [c for c in COLUMNS if c not in card.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    numeric = ("model_params_b", "value", "lo", "hi", "n")
    return card.with_columns(pl.col(c).cast(pl.Float64, strict=True) for c in numeric)


def _size(params_b: float | None) -> str:
    if params_b is None or math.isnan(params_b):
        return "size not public"
    return f"{params_b:.3g}B" if params_b >= 1 else f"{params_b * 1000:.3g}M"


def verdict(ours_setting: str, ours_params_b: float, ours_model: str, published: dict) -> tuple[bool, str]:
    """(comparable, the verdict's words) of our figure against one card row."""
    reasons = []
    if published["setting"] != ours_setting:
        reasons.append(f"setting {published['setting']} vs ours {ours_setting}")
    size = published["model_params_b"]
    if size is None or math.isnan(size):
        reasons.append(f"{published['model']} ({_size(size)}) vs {ours_model} ({_size(ours_params_b)})")
    elif not (1 / SIZE_FACTOR <= ours_params_b / size <= SIZE_FACTOR):
        reasons.append(f"{published['model']} ({_size(size)}) vs {ours_model} ({_size(ours_params_b)})")
    if reasons:
        return False, "not comparable (" + "; ".join(reasons) + ")"
    return True, "comparable"


def compare(
    experiment: str, kind: str, figures: list[dict], model: str, n_parameters: int,
    card: pl.DataFrame | None = None,
) -> list[dict]:
    """Rows of the "replication" table: each of our `figures` ({metric, setting, value, lo,
    hi, card_metric, card_settings}) beside every card row of the same kind and card metric in
    one of `card_settings` (the settings it could be read against; the first is its own)."""
    card = read_card() if card is None else card
    params_b = n_parameters / 1e9
    rows = []
    for fig in figures:
        matches = card.filter(pl.col("kind") == kind, pl.col("metric") == fig["card_metric"],
                              pl.col("setting").is_in(fig["card_settings"]))
        for pub in matches.iter_rows(named=True):
            comparable, words = verdict(fig["card_settings"][0], params_b, model, pub)
            rows.append({
                "experiment": experiment, "metric": fig["metric"], "ours": fig["value"],
                "ours_lo": fig["lo"], "ours_hi": fig["hi"], "source": pub["source"],
                "model": pub["model"], "setting": pub["setting"], "published": pub["value"],
                "published_lo": pub["lo"], "published_hi": pub["hi"], "comparable": comparable,
                "verdict": words,
            })
    return rows


def summary_section(rows: list[dict], fmt) -> str:
    """Markdown: our figure beside each published one, with the verdict. `fmt(value, lo, hi,
    metric)` formats a figure."""
    from alignlab.report import table

    if not rows:
        return "No published reference result on the replication card matches these metrics."
    return table(
        ["metric", "ours", "published", "source", "model", "setting", "verdict"],
        [[r["metric"], fmt(r["ours"], r["ours_lo"], r["ours_hi"], r["metric"]),
          fmt(r["published"], r["published_lo"], r["published_hi"], r["metric"]), r["source"], r["model"],
          r["setting"], r["verdict"]] for r in rows],
    )
