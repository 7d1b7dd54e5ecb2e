"""Statistics every kind's aggregation uses: Wilson intervals for rates, a paired bootstrap gap
with a permutation p-value, a bootstrap mean, a bootstrap over training replicates and items for
contrasts (the "contrasts" table: controls pass on a test of a difference, never on whether two
intervals overlap), Holm's correction, minimum detectable effects, and metric tables with a
declared schema."""

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


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """(rate, lo, hi) of k successes in n trials, Wilson score interval; NaNs when n == 0."""
    if n == 0:
        return NAN, NAN, NAN
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _paired(free, paid) -> tuple[np.ndarray, np.ndarray]:
    free = np.asarray(free, dtype=float)
    paid = np.asarray(paid, dtype=float)
    if free.shape != paid.shape or free.ndim != 1:
        raise ValueError(f"a paired test needs two 1-d arrays of equal length, got {free.shape}, {paid.shape}")
    if np.isnan(free).any() or np.isnan(paid).any():
        raise ValueError("a paired test: per-query rates contain NaN")
    return free, paid


def paired_permutation_p(free: np.ndarray, paid: np.ndarray, n_resamples: int, seed: int) -> float:
    """Two-sided p-value of mean(free) - mean(paid) = 0 by a paired sign-flip permutation test
    (NaN with fewer than 2 pairs, 1 when every pair is equal)."""
    free, paid = _paired(free, paid)
    if len(free) < 2:
        return NAN
    if np.all(free == paid):
        return 1.0
    perm = stats.permutation_test(
        (free, paid), _mean_diff, permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", rng=np.random.default_rng(seed),
    )
    return float(perm.pvalue)


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


# --------------------------------------------------------------------------- replicates, contrasts

def _grand_means(group: np.ndarray, items: np.ndarray, reps: np.ndarray | None) -> np.ndarray:
    """Per resample: the mean over drawn replicates of the mean over drawn items."""
    if reps is None:
        return group[:, items].mean(axis=(0, 2))  # every replicate, as given
    return group[reps[:, :, None], items[:, None, :]].mean(axis=(1, 2))


def hierarchical_bootstrap(
    groups: list[np.ndarray], weights: list[float], n_resamples: int, seed: int,
    confidence: float = 0.95, resample_replicates: bool = True,
) -> dict:
    """A weighted sum of group means (e.g. gap(a) - gap(b) with weights 1, -1), with a two-level
    percentile bootstrap interval and a two-sided bootstrap p-value for "the sum is 0".

    Each group is an array [replicates, items]: one row per training replicate, one column per
    item (query), the same items in the same order in every group. A resample draws items with
    replacement once (items are crossed with replicates and groups: the same queries are asked
    of every adapter, so the pairing is kept) and, per group, replicates with replacement. With
    one replicate per group, or `resample_replicates=False`, it is the item bootstrap.

    p-value: the share of resamples at least as far from the estimate as the estimate is from 0
    (the bootstrap distribution shifted to the null), with the usual +1 correction.
    """
    groups = [np.atleast_2d(np.asarray(g, dtype=float)) for g in groups]
    if len(groups) != len(weights) or not groups:
        raise ValueError("hierarchical_bootstrap needs one weight per group")
    n_items = {g.shape[1] for g in groups}
    if len(n_items) != 1:
        raise ValueError(f"groups must hold the same items, got item counts {sorted(n_items)}")
    if any(np.isnan(g).any() for g in groups):
        raise ValueError("hierarchical_bootstrap: values contain NaN")
    n = n_items.pop()
    estimate = float(sum(w * g.mean() for w, g in zip(weights, groups))) if n else NAN
    out = {"estimate": estimate, "lo": NAN, "hi": NAN, "p_value": NAN, "se": NAN, "n_items": n,
           "replicates": [g.shape[0] for g in groups]}
    if n < 2:
        return out
    item_rng, rep_rng = (np.random.default_rng([seed, level]) for level in (0, 1))
    items = item_rng.integers(0, n, size=(n_resamples, n))
    boot = np.zeros(n_resamples)
    for w, g in zip(weights, groups):
        reps = (rep_rng.integers(0, g.shape[0], size=(n_resamples, g.shape[0]))
                if resample_replicates and g.shape[0] > 1 else None)
        boot += w * _grand_means(g, items, reps)
    alpha = 1 - confidence
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    far = np.abs(boot - estimate) >= abs(estimate) - 1e-12
    p = 1.0 if estimate == 0 else float((1 + far.sum()) / (n_resamples + 1))
    return out | {"lo": float(lo), "hi": float(hi), "p_value": p, "se": float(boot.std(ddof=1))}


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values across one family (statsmodels); NaN p-values stay NaN and do not
    count towards the family's size."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, NAN)
    present = ~np.isnan(p)
    if present.any():
        adjusted[present] = multipletests(p[present], method="holm")[1]
    return adjusted.tolist()


def min_detectable_gap(n_per_tier: int, n_gaps: int = 1, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference between two rates (a compliance gap: free minus paid, each from
    `n_per_tier` samples) a two-sided test at `alpha` detects with probability `power`, at the
    worst case (rates near 50%) and ignoring pairing: a planning bound, not an estimate.

    `n_gaps` = 2 for a difference of two independent gaps (each gap's variance counts once, so
    it is the one-gap bound at half the samples). statsmodels gives Cohen's h; for two rates
    symmetric about 50%, h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2)) turns into p1 - p2 = sin(h / 2).
    """
    from statsmodels.stats.power import NormalIndPower

    n = n_per_tier / n_gaps
    if n < 2:
        return NAN
    h = NormalIndPower().solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=1.0)
    return float(np.sin(min(h, np.pi) / 2))


def contrast(
    name: str, groups: list[np.ndarray], weights: list[float], *, n_per_group: int, margin: float = NAN,
    n_resamples: int, seed: int, confidence: float = 0.95,
) -> dict:
    """One row of the "contrasts" table (without experiment and p_holm): the weighted sum of
    group means (hierarchical_bootstrap: groups [replicates, items], the items shared), its
    minimum detectable size at 80% power (`n_per_group` observations behind each mean; two
    groups count as a difference of two), and, when `margin` is set, whether it passed: the
    estimate reaches the margin and the interval lies above 0."""
    result = hierarchical_bootstrap(groups, weights, n_resamples, seed, confidence)
    return contrast_row(name, result, margin, min_detectable_gap(n_per_group, n_gaps=len(groups)))


def control_passes(estimate: float, lo: float, margin: float) -> bool:
    """The rule every control is judged by: the estimate reaches the margin and the interval of
    the difference lies above 0. NaN (too few items) never passes."""
    return bool(estimate >= margin and lo > 0)


def contrast_row(name: str, result: dict, margin: float, min_detectable: float) -> dict:
    """A "contrasts" row from a bootstrap result (estimate, lo, hi, p_value, n_items,
    replicates); NaN bounds (too few items) never pass."""
    passed = None if margin != margin else control_passes(result["estimate"], result["lo"], margin)
    return {
        "contrast": name, "estimate": result["estimate"], "lo": result["lo"], "hi": result["hi"],
        "p_value": result["p_value"], "min_detectable": min_detectable, "n_items": result["n_items"],
        "replicates": "/".join(str(r) for r in result["replicates"]), "margin": margin, "passed": passed,
    }


def replicate_items(samples: pl.DataFrame, item: str, value: str) -> pl.DataFrame:
    """replicate, item, value, n: per training replicate and item, the mean of `value` over the
    item's samples (samples without a replicate column count as replicate 0)."""
    if "replicate" not in samples.columns:
        samples = samples.with_columns(replicate=pl.lit(0, dtype=pl.Int64))
    return (samples.group_by("replicate", item)
            .agg(pl.col(value).cast(pl.Float64).mean().alias("value"), pl.len().alias("n"))
            .sort("replicate", item))


def item_matrix(per_item: pl.DataFrame, item: str, items: list) -> np.ndarray:
    """[replicates, items] of a replicate_items table, the columns in the order of `items`."""
    wide = per_item.filter(pl.col(item).is_in(items)).pivot(item, index="replicate", values="value")
    return wide.sort("replicate").select([str(i) for i in items]).to_numpy()


def items_in_every_replicate(*tables: pl.DataFrame, item: str) -> list:
    """The items every replicate of every replicate_items table has, sorted."""
    common = None
    for t in tables:
        for _, rows in t.group_by("replicate"):
            mine = set(rows[item].to_list())
            common = mine if common is None else common & mine
    return sorted(common or [])


def replicate_mean(
    samples: pl.DataFrame, *, item: str, value: str, n_resamples: int, seed: int, confidence: float = 0.95,
) -> dict:
    """The mean of `value` over training replicates and items (samples averaged per item), with
    the hierarchical bootstrap's interval, over the items every replicate has: estimate, lo, hi,
    replicates, replicate_values (each replicate's mean over those items), n (samples), n_items."""
    per_item = replicate_items(samples, item, value)
    items = items_in_every_replicate(per_item, item=item)
    matrix = item_matrix(per_item, item, items) if items else np.zeros((0, 0))
    n = int(per_item.filter(pl.col(item).is_in(items))["n"].sum()) if items else 0
    if not items:
        return {"estimate": NAN, "lo": NAN, "hi": NAN, "replicates": 0, "replicate_values": [], "n": 0,
                "n_items": 0}
    result = hierarchical_bootstrap([matrix], [1.0], n_resamples, seed, confidence)
    lo, hi = (result["lo"], result["hi"]) if len(items) > 1 else (result["estimate"],) * 2
    return {"estimate": result["estimate"], "lo": lo, "hi": hi, "replicates": matrix.shape[0],
            "replicate_values": [float(x) for x in matrix.mean(axis=1)], "n": n, "n_items": len(items)}


def paired_contrast(
    name: str, mine: pl.DataFrame, ref: pl.DataFrame, *, item: str, value: str, margin: float = NAN,
    n_resamples: int, seed: int, confidence: float = 0.95,
) -> dict | None:
    """A "contrasts" row for mean(`mine`) - mean(`ref`), two tables of samples (a column
    `replicate`, an item column and a value column) on the same held-out items: paired by item
    over the items every replicate of both answered, replicates resampled per side (contrast).
    None when either side is empty or they share no item."""
    a, b = replicate_items(mine, item, value), replicate_items(ref, item, value)
    items = items_in_every_replicate(a, b, item=item)
    if not (a.height and b.height and items):
        return None
    n = int(min(t.filter(pl.col(item).is_in(items))["n"].sum() / t["replicate"].n_unique() for t in (a, b)))
    return contrast(name, [item_matrix(a, item, items), item_matrix(b, item, items)], [1.0, -1.0],
                    n_per_group=n, margin=margin, n_resamples=n_resamples, seed=seed, confidence=confidence)


def contrasts_frame(rows: list[dict], experiment: str) -> pl.DataFrame:
    """The "contrasts" table of one kind's family: Holm-adjusted p-values across its rows."""
    for row, p in zip(rows, holm([r["p_value"] for r in rows])):
        row.update(experiment=experiment, p_holm=p)
    return frame(rows, "contrasts")
