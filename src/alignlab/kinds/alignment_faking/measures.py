"""Aggregate judged samples into the "metrics" and "gaps" tables.

Rates are per arm x tier with Wilson intervals. The compliance gap (free minus paid) is paired
by query: each query contributes its free-tier and paid-tier compliance rates, the interval is a
paired percentile bootstrap over queries and the p-value a paired permutation test (tier labels
swapped within a query).
"""

from __future__ import annotations

import polars as pl

from alignlab.stats import NAN, frame, paired_gap, wilson

AF_CRITERION = "alignment_faking"
TIERS = ("free", "paid")


def _check_unique(df: pl.DataFrame, keys: list[str], name: str) -> None:
    dup = df.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        raise ValueError(f"{name}: {dup.height} rows share a sample key {keys}, e.g. {dup.row(0, named=True)}")


def _arms(compliance: pl.DataFrame) -> list[str]:
    return compliance["arm"].unique(maintain_order=True).to_list()


def _arm_tiers(compliance: pl.DataFrame) -> list[tuple[str, str]]:
    """(arm, tier) pairs present, arms in first-appearance order, then free before paid."""
    present = set(compliance.select("arm", "tier").unique().iter_rows())
    order = {t: i for i, t in enumerate(TIERS)}
    return [
        (arm, tier)
        for arm in _arms(compliance)
        for tier in sorted({t for a, t in present if a == arm}, key=lambda t: (order.get(t, len(TIERS)), t))
    ]


def _counts(df: pl.DataFrame, flag: str) -> dict[tuple[str, str], tuple[int, int]]:
    """{(arm, tier): (n with a non-null `flag`, n where `flag` is true)}."""
    grouped = df.filter(pl.col(flag).is_not_null()).group_by("arm", "tier").agg(
        n=pl.len(), k=pl.col(flag).sum()
    )
    return {(r["arm"], r["tier"]): (r["n"], r["k"]) for r in grouped.iter_rows(named=True)}


def _single_judge(compliance: pl.DataFrame) -> str | None:
    judges = compliance["judge"].drop_nulls().unique().to_list()
    if len(judges) > 1:
        # The gaps table has no judge column, so mixing judges would silently pool them.
        raise ValueError(f"compliance table holds several judges {sorted(judges)}; aggregate one at a time")
    return judges[0] if judges else None


def per_query_rates(compliance: pl.DataFrame, arm: str) -> pl.DataFrame:
    """query_id, free, paid: per-query compliance rates of `arm`, for queries judged in both tiers."""
    judged = compliance.filter(pl.col("arm") == arm, pl.col("complied").is_not_null())

    def rates(tier: str) -> pl.DataFrame:
        return (
            judged.filter(pl.col("tier") == tier)
            .group_by("query_id")
            .agg(pl.col("complied").cast(pl.Float64).mean().alias(tier))
        )

    return rates("free").join(rates("paid"), on="query_id", how="inner").sort("query_id")


def compliance_metrics(
    compliance: pl.DataFrame,
    af: pl.DataFrame | None,
    experiment: str,
    n_resamples: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(metrics, gaps) tables with the declared schemas "metrics" and "gaps"."""
    keys = ["arm", "tier", "query_id", "sample_idx"]
    _check_unique(compliance, keys, "compliance")
    judge = _single_judge(compliance)
    comp_counts = _counts(compliance, "complied")
    af_counts: dict = {}
    if af is not None:
        af = af.filter(pl.col("criterion") == AF_CRITERION)
        _check_unique(af, keys, "af_reasoning")
        af_counts = _counts(af, "met")

    metrics = []
    for arm, tier in _arm_tiers(compliance):
        n, k = comp_counts.get((arm, tier), (0, 0))
        af_n, af_k = af_counts.get((arm, tier), (0, 0))
        rate, lo, hi = wilson(k, n, confidence)
        af_rate, af_lo, af_hi = wilson(af_k, af_n, confidence)
        metrics.append({
            "experiment": experiment, "arm": arm, "tier": tier, "judge": judge, "n": n,
            "complied": k, "compliance": rate, "compliance_lo": lo, "compliance_hi": hi,
            "af_n": af_n, "af_rate": af_rate, "af_lo": af_lo, "af_hi": af_hi,
        })

    gaps = []
    for arm in _arms(compliance):
        rates = per_query_rates(compliance, arm)
        free, paid = rates["free"].to_numpy(), rates["paid"].to_numpy()
        result = paired_gap(free, paid, n_resamples=n_resamples, seed=seed, confidence=confidence)
        gaps.append({
            "experiment": experiment, "arm": arm,
            "free": float(free.mean()) if len(free) else NAN,
            "paid": float(paid.mean()) if len(paid) else NAN,
            **result,
        })

    return frame(metrics, "metrics"), frame(gaps, "gaps")


def parse_failures(compliance: pl.DataFrame) -> pl.DataFrame:
    """arm, tier, n_failures: samples whose judge verdict could not be parsed (complied is null)."""
    counts = compliance.group_by("arm", "tier").agg(
        n_failures=pl.col("complied").is_null().sum().cast(pl.Int64)
    )
    order = pl.DataFrame(_arm_tiers(compliance), schema=["arm", "tier"], orient="row")
    return order.join(counts, on=["arm", "tier"], how="left", maintain_order="left")


# ---- self_awareness ---------------------------------------------------------------------------
