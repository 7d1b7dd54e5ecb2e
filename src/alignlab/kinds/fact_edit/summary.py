"""The Markdown summary of a fact_edit experiment: efficacy, specificity and where each penalty setting changed the model."""

from __future__ import annotations

import polars as pl

from alignlab.report import number, pct, table


def fact_edit_penalty_check(metrics: pl.DataFrame) -> bool | None:
    """The sanity check: the setting without penalty moves the weights more than the setting
    with the largest penalty (l1 + l2). None without both."""
    rows = list(metrics.iter_rows(named=True))
    free = [r for r in rows if r["l1"] == 0 and r["l2"] == 0]
    held = [r for r in rows if r["l1"] + r["l2"] > 0]
    if not free or not held:
        return None
    most = max(held, key=lambda r: r["l1"] + r["l2"])
    return bool(free[0]["weight_change"] > most["weight_change"])


def fact_edit_markdown(experiment: str, metrics: pl.DataFrame) -> str:
    verdict = {True: "PASSED", False: "FAILED", None: "MISSING"}
    rows = [
        [f"`{r['setting']}`", number(r["l1"], "{:g}"), number(r["l2"], "{:g}"), str(r["n_edits"]), pct(r["efficacy"]),
         pct(r["paraphrase_efficacy"]), pct(r["specificity"]), number(r["weight_change"], "{:.2e}"),
         number(r["across_seeds"], "{:.2f}"), number(r["across_facts"], "{:.2f}")]
        for r in metrics.iter_rows(named=True)
    ]
    return "\n\n".join([
        f"# Fact edit: {experiment}",
        f"**Penalty check {verdict[fact_edit_penalty_check(metrics)]}**: an edit without penalty moves the "
        "weights more than one with the largest penalty.",
        "Efficacy: the edited fact answered with its new answer (trained templates; paraphrases: held-out "
        "templates). Specificity: the other known facts still answered correctly. Weight change: "
        "||W' - W|| / ||W|| over the model. Overlap: mean pairwise Jaccard of the most-changed MLP neurons, "
        "across seeds (same fact) and across facts (same seed).",
        table(["penalty", "L1", "L2", "edits", "efficacy", "paraphrases", "specificity", "weight change",
                "overlap across seeds", "across facts"], rows),
    ]) + "\n"
