"""Statistics every kind's aggregation uses: Wilson intervals for rates, a paired bootstrap gap
with a permutation p-value, a bootstrap mean, and metric tables with a declared schema."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from alignlab.artifacts import SCHEMAS

NAN = float("nan")


def metric_row(table: pl.DataFrame, **where) -> dict | None:
    """The first row of a metrics-like table whose columns equal the given values, as a dict;
    None when no row matches (e.g. `metric_row(metrics, arm="base", measure="spells")`)."""
    rows = table.filter(**where)
    return rows.row(0, named=True) if rows.height else None


def interval_above(row: dict, other: dict) -> bool:
    """True if row's 95% interval lies wholly above other's (row lo > other hi); a missing or
    NaN bound (too few samples) is no evidence: False."""
    lo, hi = row["lo"], other["hi"]
    return lo is not None and hi is not None and bool(lo > hi)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """(rate, lo, hi) of k successes in n trials, Wilson score interval; NaNs when n == 0."""
    if n == 0:
        return NAN, NAN, NAN
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def paired_gap(
    free: np.ndarray, paid: np.ndarray, n_resamples: int, seed: int, confidence: float = 0.95
) -> dict:
    """Mean(free) - mean(paid) over paired per-query rates, with bootstrap interval and p-value."""
    free = np.asarray(free, dtype=float)
    paid = np.asarray(paid, dtype=float)
    if free.shape != paid.shape or free.ndim != 1:
        raise ValueError(f"paired_gap needs two 1-d arrays of equal length, got {free.shape}, {paid.shape}")
    if np.isnan(free).any() or np.isnan(paid).any():
        raise ValueError("paired_gap: per-query rates contain NaN")
    n = len(free)
    gap = float(free.mean() - paid.mean()) if n else NAN
    out = {"gap": gap, "gap_lo": NAN, "gap_hi": NAN, "p_value": NAN, "n_queries": n}
    if n < 2:
        return out
    if np.all(free == paid):
        # Nothing varies: every resample and permutation gives 0. Answer directly rather than rely
        # on how a given scipy version and interval method treat degenerate data.
        return out | {"gap_lo": gap, "gap_hi": gap, "p_value": 1.0}
    rng = np.random.default_rng(seed)
    boot = stats.bootstrap(
        (free, paid), _mean_diff, paired=True, vectorized=True, method="percentile",
        n_resamples=n_resamples, confidence_level=confidence, rng=rng,
    )
    perm = stats.permutation_test(
        (free, paid), _mean_diff, permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", rng=rng,
    )
    ci = boot.confidence_interval
    return out | {"gap_lo": float(ci.low), "gap_hi": float(ci.high), "p_value": float(perm.pvalue)}


def frame(rows: list[dict], schema: str) -> pl.DataFrame:
    """Rows as a DataFrame with exactly the declared columns and types (also when empty)."""
    empty = pl.from_arrow(SCHEMAS[schema].empty_table())
    if not rows:
        return empty
    return pl.DataFrame(rows, schema=empty.schema).select(SCHEMAS[schema].names)


def bootstrap_mean(values: np.ndarray, n_resamples: int, seed: int, confidence: float) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile bootstrap interval of the mean; NaNs when empty, the value
    itself when every value is the same."""
    if values.size == 0:
        return NAN, NAN, NAN
    mean = float(values.mean())
    if values.size == 1 or np.all(values == values[0]):
        return mean, mean, mean
    ci = stats.bootstrap((values,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                         method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return mean, float(ci.low), float(ci.high)
