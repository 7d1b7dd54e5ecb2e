"""Judges scored against labelled sets: how often a judge agrees with the labels, and with the
other judges.

A labelled set is a table of items (e.g. request / response pairs, or scratchpads) with a label
column and a `split` column: `dev` rows are for whoever improves a judge, `test` rows only for
scoring it. The packaged sets live in judge_sets/ (or a kind's data/ folder); a user's own set is
a CSV / JSONL / Parquet file with a column mapping (our name -> their column).

The "judge_scores" table is long: one row per (set, judge, measure[, label, predicted]):
accuracy; Cohen's kappa against the labels (`other` = "labels") and between judges (`other` =
the second judge); per-class precision and recall; and one count per confusion-matrix cell.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

from alignlab.stats import NAN
from alignlab.tables import read_file, row_names

# The package files this module reads (see codedeps: editing one reruns the steps that run it).
DATA_FILES = ("judge_sets/compliance.jsonl",)

PACKAGED = Path(__file__).parent / "judge_sets"
COMPLIANCE_SET = PACKAGED / "compliance.jsonl"
COMPLIANCE_LABELS = ("refused", "partial", "complied")
SPLITS = ("dev", "test")


class LabelledSetError(ValueError):
    pass


def read_labelled(
    path: Path, columns: dict[str, str], required: Sequence[str], labels: dict[str, Sequence],
    split: str | None = "test",
) -> pl.DataFrame:
    """The rows of a labelled set (of `split`; None: every row), columns renamed by `columns`
    (our name -> the file's), with the `required` columns present and non-empty and each column
    of `labels` holding only its allowed values. Errors name the file, the column and the row."""
    table = read_file(Path(path))
    renames = {theirs: ours for ours, theirs in columns.items()}
    missing = [theirs for theirs in renames if theirs not in table.columns]
    if missing:
        raise LabelledSetError(
            f"{path}: the column mapping names columns the file does not have: {missing} "
            f"(it has {table.columns})"
        )
    table = table.rename(renames)
    needed = [c for c in (*required, *labels, "split") if c not in table.columns]
    if needed:
        raise LabelledSetError(f"{path}: missing column(s) {needed} (it has {table.columns}; map yours with `columns`)")
    names = row_names(Path(path), table.height)
    for col in (*required, "split"):
        empty = table.with_row_index().filter(
            pl.col(col).is_null() | (pl.col(col).cast(pl.String).str.strip_chars() == "")
        )
        if empty.height:
            raise LabelledSetError(f"{path}, {names[empty['index'][0]]}: column '{col}' is empty")
    for col, allowed in {**labels, "split": SPLITS}.items():
        values = table[col].to_list()
        for i, value in enumerate(values):
            if value not in allowed:
                raise LabelledSetError(
                    f"{path}, {names[i]}: column '{col}' is {value!r}; expected one of {list(allowed)}"
                )
    if split is not None:
        table = table.filter(pl.col("split") == split)
        if not table.height:
            raise LabelledSetError(f"{path}: no rows in split '{split}'")
    return table


def _kappa(a: Sequence, b: Sequence, classes: Sequence) -> float:
    """Cohen's kappa of two raters over `classes` (statsmodels); NaN when undefined (both
    raters gave one and the same class to every item)."""
    from statsmodels.stats.inter_rater import cohens_kappa

    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)))
    for x, y in zip(a, b):
        counts[index[x], index[y]] += 1
    expected = (counts.sum(1) @ counts.sum(0)) / counts.sum() ** 2
    if np.isclose(expected, 1.0):
        return NAN
    return float(cohens_kappa(counts, return_results=False))


def score_judges(
    set_name: str, truth: Sequence, predictions: dict[str, Sequence], classes: Sequence,
    negative: str | None = None,
) -> list[dict]:
    """Rows of the "judge_scores" table (without the experiment column) for every judge in
    `predictions` (judge -> one predicted class per item; None counts as wrong, e.g. a verdict
    that could not be parsed) against `truth`, and kappa between each pair of judges.
    `negative` (e.g. "refused"): also the accuracy of "negative or not" (`binary_accuracy`),
    what a rate of the other classes counts."""
    classes = list(classes)
    rows = []

    def row(judge, measure, value, other="labels", label="", predicted="", n=len(truth)):
        rows.append({"set": set_name, "judge": judge, "other": other, "measure": measure,
                     "label": label, "predicted": predicted, "value": float(value), "n": n})

    shown = classes + ["unparsed"]
    for judge, predicted in predictions.items():
        if len(predicted) != len(truth):
            raise ValueError(f"judge '{judge}': {len(predicted)} predictions for {len(truth)} items")
        predicted = ["unparsed" if p is None else p for p in predicted]
        pairs = list(zip(truth, predicted))
        row(judge, "accuracy", np.mean([t == p for t, p in pairs]) if pairs else NAN)
        row(judge, "kappa", _kappa(truth, predicted, shown))
        if negative is not None:
            row(judge, "binary_accuracy", np.mean([p != "unparsed" and (t == negative) == (p == negative)
                                                   for t, p in pairs] or [NAN]))
        for c in classes:
            said = [t for t, p in pairs if p == c]
            true = [p for t, p in pairs if t == c]
            row(judge, "precision", np.mean([t == c for t in said]) if said else NAN, label=c, n=len(said))
            row(judge, "recall", np.mean([p == c for p in true]) if true else NAN, label=c, n=len(true))
        for t in classes:
            for p in shown:
                if p == "unparsed" and "unparsed" not in predicted:
                    continue
                row(judge, "count", sum(1 for x, y in pairs if x == t and y == p), label=t, predicted=p)
    for a, b in combinations(predictions, 2):
        pa = ["unparsed" if p is None else p for p in predictions[a]]
        pb = ["unparsed" if p is None else p for p in predictions[b]]
        row(a, "kappa", _kappa(pa, pb, shown), other=b)
    return rows


def accuracies(scores: pl.DataFrame) -> list[dict]:
    """set, judge, accuracy, n: one per judge scored."""
    return scores.filter(pl.col("measure") == "accuracy").select("set", "judge", "value", "n").rename(
        {"value": "accuracy"}).to_dicts()


def below_bar(scores: pl.DataFrame, min_accuracy: float) -> list[dict]:
    """The judges whose accuracy on a set is below `min_accuracy` (or unknown)."""
    return [r for r in accuracies(scores) if not r["accuracy"] >= min_accuracy]


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.{digits}f}"


def summary_section(scores: pl.DataFrame, min_accuracy: float) -> str:
    """Markdown: each judge's accuracy and kappa on each set's test split, the per-class recall,
    and a plain sentence for every judge below the bar."""
    from alignlab.report import table

    lines = []
    for r in accuracies(scores):
        where = pl.col("set") == r["set"], pl.col("judge") == r["judge"]
        kappa = scores.filter(*where, pl.col("measure") == "kappa", pl.col("other") == "labels")["value"]
        recall = scores.filter(*where, pl.col("measure") == "recall")
        per_class = ", ".join(f"{c} {_fmt(v)} (n={n})" for c, v, n in recall.select("label", "value", "n").iter_rows())
        verdict = "ok" if r["accuracy"] >= min_accuracy else f"**below {_fmt(min_accuracy)}**"
        lines.append([r["set"], f"`{r['judge']}`", str(r["n"]), _fmt(r["accuracy"], 3),
                      _fmt(kappa[0] if kappa.len() else NAN), per_class, verdict])
    text = table(["set", "judge", "items", "accuracy", "kappa", "recall per class", "bar"], lines)
    between = scores.filter(pl.col("measure") == "kappa", pl.col("other") != "labels")
    if between.height:
        text += "\n\nAgreement between judges (Cohen's kappa): " + "; ".join(
            f"`{a}` vs `{b}` on {s}: {_fmt(v)}" for s, a, b, v in between.select("set", "judge", "other", "value").iter_rows()
        ) + "."
    for r in below_bar(scores, min_accuracy):
        text += (f"\n\n**Judge `{r['judge']}` falls below the validation bar on {r['set']}**: accuracy "
                 f"{_fmt(r['accuracy'], 3)} on {r['n']} labelled test items, below "
                 f"judges.min_accuracy = {_fmt(min_accuracy)}. Numbers it produced are not validated.")
    return text
