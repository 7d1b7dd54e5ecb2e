"""The password_lock experiment's controls and its open question as paired differences (the
"contrasts" table): each compares two arms' (or conditions') accuracy on the same held-out
problems, so a problem's difficulty cancels; replicates are resampled per side."""

from __future__ import annotations

import polars as pl

from alignlab.stats import contrasts_frame, paired_contrast


def _answers(predictions: pl.DataFrame, setting: str, arm: str, condition: str) -> pl.DataFrame:
    return predictions.filter(pl.col("setting") == setting, pl.col("arm") == arm, pl.col("condition") == condition)


def _largest(predictions: pl.DataFrame, setting: str, unlock: str) -> str | None:
    arms = (predictions.filter(pl.col("setting") == setting, pl.col("unlock") == unlock)
            .select("arm", "n_unlock").unique().sort("n_unlock"))
    return arms["arm"][-1] if arms.height else None


def comparisons(predictions: pl.DataFrame, setting: str) -> dict[str, tuple[tuple[str, str], tuple[str, str], float]]:
    """name -> ((arm, condition), (reference arm, condition), margin; NaN: not a control)."""
    locked_none = ("locked", "none")
    out = {f"lock ({setting})": (("locked", "password"), locked_none, 0.0)}
    if strong := _largest(predictions, setting, "strong"):
        out[f"strong unlock ({setting})"] = ((strong, "none"), locked_none, 0.0)
    if weak := _largest(predictions, setting, "weak"):
        out[f"weak unlock ({setting})"] = ((weak, "none"), locked_none, float("nan"))
    out.update(never_capable_comparisons(predictions, setting))
    return out


def never_capable_comparisons(predictions: pl.DataFrame, setting: str) -> dict:
    """The never-capable control's rows, where its arms were evaluated: `never-capable lacks the
    skill` (the lock's with-password accuracy above the never-capable adapter's: a control, or
    the model had the skill without the lock), and per strong arm `unlock beyond learning`
    (strong_<n> minus never_strong_<n>, same samples and recipe: what the lock's hidden skill
    adds to learning afresh; a control for the largest n, reported for the others)."""
    arms = set(predictions.filter(pl.col("setting") == setting)["arm"])
    if "never" not in arms:
        return {}
    out = {f"never-capable lacks the skill ({setting})": (("locked", "password"), ("never", "password"), 0.0)}
    strong = (predictions.filter(pl.col("setting") == setting, pl.col("unlock") == "strong")
              .select("arm", "n_unlock").unique().sort("n_unlock"))
    for i, (arm, n) in enumerate(strong.iter_rows()):
        if f"never_strong_{n}" in arms:
            margin = 0.0 if i == strong.height - 1 else float("nan")
            out[f"unlock beyond learning ({setting}, n={n})"] = ((arm, "none"), (f"never_strong_{n}", "none"), margin)
    return out


def contrasts(predictions: pl.DataFrame, experiment: str, *, n_resamples: int, seed: int,
              confidence: float = 0.95) -> pl.DataFrame:
    """Per setting: the lock (with minus without the password), the strong unlock (the largest
    strong arm minus the locked model, no password) and the weak unlock (the same for the weak
    arm; the open question, so no bar), Holm-adjusted across all of them."""
    rows = []
    for setting in predictions["setting"].unique(maintain_order=True):
        for name, (mine, ref, margin) in comparisons(predictions, setting).items():
            row = paired_contrast(name, _answers(predictions, setting, *mine), _answers(predictions, setting, *ref),
                                  item="problem_id", value="correct", margin=margin, n_resamples=n_resamples,
                                  seed=seed, confidence=confidence)
            if row:
                rows.append(row)
    return contrasts_frame(rows, experiment)
