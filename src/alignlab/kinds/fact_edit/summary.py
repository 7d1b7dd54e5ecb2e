"""The Markdown summary of a fact_edit experiment: its four controls, then efficacy, specificity
(held-out facts, the edited athlete's second fact, unrelated text) and where each penalty setting
changed the model, beside the null edit, and the per-edit measures with intervals over edits."""

from __future__ import annotations

import polars as pl

from alignlab.report import finite, number, pct, table

VERDICT = {True: "PASSED", False: "FAILED", None: "MISSING"}


def fact_edit_penalty_checks(metrics: pl.DataFrame) -> dict[str, bool]:
    """Per norm (l1, l2): the setting without penalty moves the weights more than the strongest
    setting that uses that norm alone. Settings are ranked within a norm only (an L1 and an L2
    strength are not on one scale); settings that mix both norms are not ranked. A norm without
    a setting of its own, or a table without an unpenalized setting, has no entry."""
    rows = list(metrics.iter_rows(named=True))
    free = [r for r in rows if r["l1"] == 0 and r["l2"] == 0]
    if not free:
        return {}
    out = {}
    for norm, other in (("l1", "l2"), ("l2", "l1")):
        alone = [r for r in rows if r[norm] > 0 and r[other] == 0]
        if alone:
            strongest = max(alone, key=lambda r: r[norm])
            out[norm] = bool(free[0]["weight_change"] > strongest["weight_change"])
    return out


def fact_edit_penalty_check(metrics: pl.DataFrame) -> bool | None:
    """Every norm's penalty check passes (None: nothing to compare)."""
    checks = fact_edit_penalty_checks(metrics)
    return all(checks.values()) if checks else None


def fact_edit_specificity_check(metrics: pl.DataFrame) -> bool | None:
    """Every edit of every setting passed the specificity control (held-out facts kept, loss on
    unrelated text not raised beyond the bound)."""
    shares = [s for s in metrics["share_specific"].to_list() if s is not None and s == s]
    return all(s == 1.0 for s in shares) if shares else None


def fact_edit_same_subject_check(metrics: pl.DataFrame) -> bool | None:
    """Every edit whose athlete's second fact the base knows keeps it (share_same_subject_kept 1
    in every setting that has such an edit). None: no edit has one (not measured)."""
    shares = [r["share_same_subject_kept"] for r in metrics.iter_rows(named=True) if r["n_same_subject"]]
    return all(s == 1.0 for s in shares) if shares else None


def with_interval(value: float | None, lo: float | None, hi: float | None, fmt: str, scale: float = 1.0) -> str:
    """`value [lo, hi]` (each times `scale`); the value alone without an interval (fewer than 2
    facts), a dash without a value."""
    if not finite(value):
        return "–"
    if not (finite(lo) and finite(hi)):
        return fmt.format(scale * value)
    return f"{fmt.format(scale * value)} [{fmt.format(scale * lo)}, {fmt.format(scale * hi)}]"


def fact_edit_localization_check(metrics: pl.DataFrame) -> bool | None:
    """In every setting the neurons the changed fact itself moved (top_k by fact change, edit minus
    null edit) are the same across seeds more often than random sets of that size would be. A null
    edit equal to the edit leaves nothing to rank (overlap nan), which fails; so does a fact change
    that is noise (overlap at chance)."""
    rows = list(metrics.iter_rows(named=True))
    if not rows:
        return None
    return all(r["across_seeds"] == r["across_seeds"] and r["across_seeds"] > r["chance_overlap"] for r in rows)


def fact_edit_markdown(experiment: str, metrics: pl.DataFrame, controls: dict) -> str:
    per_norm = fact_edit_penalty_checks(metrics)
    norms = ", ".join(f"{n.upper()} {VERDICT[v]}" for n, v in per_norm.items()) or "no setting to compare"
    rows = list(metrics.iter_rows(named=True))
    outcome = [
        [f"`{r['setting']}`", number(r["l1"], "{:g}"), number(r["l2"], "{:g}"), str(r["n_edits"]),
         number(r["mean_steps_taken"], "{:.1f}"), pct(r["share_reached"]), pct(r["efficacy"]),
         pct(r["paraphrase_efficacy"]), pct(r["specificity"]), pct(r["held_out_specificity"]),
         number(r["text_loss_change"], "{:+.4f}"), pct(r["share_specific"]),
         pct(r["null_held_out_specificity"]), number(r["null_text_loss_change"], "{:+.4f}")]
        for r in rows
    ]
    where = [
        [f"`{r['setting']}`", number(r["weight_change"], "{:.2e}"), number(r["null_weight_change"], "{:.2e}"),
         number(r["fact_change"], "{:.2e}"), pct(r["moved_weights"]), pct(r["moved_neurons"]),
         pct(r["fact_top_share"]), number(r["across_seeds"], "{:.2f}"), number(r["across_facts"], "{:.2f}"),
         number(r["chance_overlap"], "{:.3f}"),
         number(r["raw_across_seeds"], "{:.2f}"), number(r["raw_across_facts"], "{:.2f}"),
         number(r["null_overlap"], "{:.2f}")]
        for r in rows
    ]
    top_k = rows[0]["top_k"] if rows else "?"
    same = fact_edit_same_subject_check(metrics)
    n_same = sum(r["n_same_subject"] for r in rows)
    n_edits = sum(r["n_edits"] for r in rows)
    if same is None:
        same_line = ("**Same-subject check NOT MEASURED**: the base model does not know the second fact (the "
                     "country) of any edited athlete on enough of its templates (facts.min_share), so no edit "
                     "could show whether changing the sport leaves it intact.")
    else:
        same_line = (f"**Same-subject check {VERDICT[same]}**: every edit whose athlete's country the base knows "
                     f"({n_same} of {n_edits} edits) keeps that athlete's country on at least "
                     f"{pct(controls.get('min_same_subject_specificity', 0.9))} of its prompts.")
    def pct_(name):
        return lambda r: with_interval(r[name], r[f"{name}_lo"], r[f"{name}_hi"], "{:.1f}%", 100)

    intervals = [
        [f"`{r['setting']}`", str(r["n_edits"]), number(r["mean_train_copies"], "{:.2f}"),
         with_interval(r["mean_steps_taken"], r["mean_steps_taken_lo"], r["mean_steps_taken_hi"], "{:.1f}"),
         pct_("efficacy")(r), pct_("paraphrase_efficacy")(r), pct_("held_out_specificity")(r),
         f"{pct_('same_subject_specificity')(r)} (n={r['n_same_subject']})",
         pct(r["null_same_subject_specificity"]),
         with_interval(r["text_loss_change"], r["text_loss_change_lo"], r["text_loss_change_hi"], "{:+.4f}"),
         with_interval(r["weight_change"], r["weight_change_lo"], r["weight_change_hi"], "{:.2e}"),
         pct_("fact_top_share")(r)]
        for r in rows
    ]
    return "\n\n".join([
        f"# Fact edit: {experiment}",
        f"**Penalty check {VERDICT[fact_edit_penalty_check(metrics)]}** ({norms}): an edit without penalty "
        "moves the weights more than the strongest setting of each norm alone.",
        f"**Specificity check {VERDICT[fact_edit_specificity_check(metrics)]}**: every edit keeps the held-out "
        f"facts' answers on at least {pct(controls['min_held_out_specificity'])} of their prompts and raises the "
        f"loss on unrelated text by at most {controls['max_text_loss_increase']:g} nats per token.",
        same_line,
        f"**Localization check {VERDICT[fact_edit_localization_check(metrics)]}**: in every setting the top "
        f"{top_k} neurons by fact change (the edit's change minus the null edit's: same recipe, seed, batches and "
        "step count, no fact changed) overlap across seeds more than random sets of that size.",
        "Steps: optimizer steps taken (each edit stops once the edited fact gets its new answer on every trained "
        "template, or at the cap); reached: share of edits that got there. Efficacy: the edited fact answered "
        "with its new answer (trained templates; paraphrases: held-out templates). Specificity: the other "
        "trained facts still answered correctly; held-out: facts never trained on, answered as before the edit; "
        "text loss: change in next-token loss on unrelated passages (nats per token); specific: share of edits "
        "passing the specificity control; null: the same measures after the null edit.",
        table(["penalty", "L1", "L2", "edits", "steps", "reached", "efficacy", "paraphrases", "specificity",
               "held-out", "text loss", "specific", "null held-out", "null text loss"], outcome),
        "Weight change: ||W' - W|| / ||W|| over the model, for the edit and the null edit; fact change: the "
        "edit's change minus the null edit's, ||W_edit - W_null|| / ||W||. "
        "Moved: share of the trained MLP weights, and of their neurons, that changed at all (L1 is a proximal "
        f"step, so it leaves weights exactly in place). Top-{top_k} share: share of the fact change (sum of "
        f"squares over neurons) carried by its top {top_k} neurons. Overlap: mean pairwise Jaccard of the top "
        f"{top_k} neurons by fact change, across seeds (same fact) and across facts (same seed), and the "
        "expected overlap of random sets of that size; raw: the same on the edit's own change; raw vs null: "
        "between the edit's and the null edit's own top neurons.",
        table(["penalty", "weight change", "null edit", "fact change", "moved weights", "moved neurons",
               f"top-{top_k} share", "overlap across seeds", "across facts", "random sets", "raw across seeds",
               "raw across facts", "raw vs null"], where),
        "Per-edit measures with 95% intervals over edits (a bootstrap that resamples the edited facts and, "
        "within them, the seeds; no interval with fewer than 2 facts). Copies: mean times an edited fact "
        "is in the training set (edit.copies). Same subject: the edited athlete's second fact (the country, "
        "never trained) answered as before the edit, over the n edits whose athlete's country the base knows; "
        "null: the same after the null edit.",
        table(["penalty", "edits", "copies", "steps", "efficacy", "paraphrases", "held-out", "same subject",
               "null same subject", "text loss", "weight change", f"top-{top_k} share"], intervals),
    ]) + "\n"
