from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from scipy import stats as sps

from alignlab import artifacts, stats
from alignlab.kinds.alignment_faking import measures as af_measures

# --- wilson -------------------------------------------------------------------------------------

def test_wilson_known_value():
    rate, lo, hi = stats.wilson(5, 10)
    assert rate == 0.5
    assert lo == pytest.approx(0.2366, abs=1e-4)
    assert hi == pytest.approx(0.7634, abs=1e-4)


@pytest.mark.parametrize("k,n,conf", [(0, 10, 0.95), (10, 10, 0.95), (3, 17, 0.9), (40, 100, 0.99)])
def test_wilson_matches_scipy(k, n, conf):
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
    assert stats.wilson(k, n, conf) == pytest.approx((k / n, ci.low, ci.high))


def test_wilson_formula_by_hand():
    k, n, z = 7, 20, sps.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert stats.wilson(k, n)[1:] == pytest.approx((centre - half, centre + half))


def test_wilson_empty_is_nan():
    assert all(math.isnan(x) for x in stats.wilson(0, 0))


# --- paired_permutation_p ---------------------------------------------------------------------

def test_paired_p_value_of_a_large_gap_and_of_none():
    assert stats.paired_permutation_p(np.ones(30), np.zeros(30), n_resamples=10000, seed=0) < 0.001
    free, paid = np.array([0.0, 1.0] * 10), np.array([1.0, 0.0] * 10)
    assert stats.paired_permutation_p(free, paid, n_resamples=5000, seed=1) > 0.5


def test_paired_p_value_is_exact_sign_flip_test():
    # 8 queries -> 256 label swaps < n_resamples, so scipy enumerates them; compare by hand.
    free = np.array([1.0, 0.75, 0.5, 1.0, 0.25, 0.5, 1.0, 0.0])
    paid = np.array([0.25, 0.5, 0.5, 0.0, 0.5, 0.0, 0.75, 0.0])
    diff = free - paid
    null = np.array([np.mean(diff * s) for s in itertools.product([1, -1], repeat=len(diff))])
    observed = diff.mean()
    eps = 1e-12
    expected = min(1.0, 2 * min(np.mean(null >= observed - eps), np.mean(null <= observed + eps)))
    assert stats.paired_permutation_p(free, paid, n_resamples=10000, seed=0) == pytest.approx(expected)


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_paired_p_value_all_equal(value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stats.paired_permutation_p(np.full(12, value), np.full(12, value), n_resamples=1000, seed=0) == 1.0


def test_paired_p_value_too_few_queries_and_unpaired_input():
    assert math.isnan(stats.paired_permutation_p(np.array([1.0]), np.array([0.0]), n_resamples=1000, seed=0))
    assert math.isnan(stats.paired_permutation_p(np.array([]), np.array([]), n_resamples=1000, seed=0))
    with pytest.raises(ValueError, match="equal length"):
        stats.paired_permutation_p(np.ones(3), np.ones(4), n_resamples=100, seed=0)
    with pytest.raises(ValueError, match="NaN"):
        stats.paired_permutation_p(np.array([1.0, np.nan]), np.ones(2), n_resamples=100, seed=0)


def test_paired_p_value_seeded():
    rng = np.random.default_rng(5)
    free, paid = rng.random(25), rng.random(25) * 0.9
    a, b = (stats.paired_permutation_p(free, paid, n_resamples=2000, seed=3) for _ in range(2))
    assert a == b


# --- compliance_metrics -------------------------------------------------------------------------

def _table(rows: list[dict], schema: str) -> pl.DataFrame:
    return pl.from_arrow(pa.Table.from_pylist(rows, schema=artifacts.SCHEMAS[schema]))


def _compliance(rows):
    return _table(
        [
            {"arm": arm, "tier": tier, "query_id": q, "sample_idx": s, "judge": "judge-x",
             "truncated": False, "outcome": None if c is None else ("complied" if c else "refused"),
             "complied": c, "score": None if c is None else float(c), "parse_ok": c is not None,
             "judge_output": "..."}
            for arm, tier, q, s, c in rows
        ],
        "compliance",
    )


def _af(rows):
    return _table(
        [
            {"arm": arm, "tier": tier, "query_id": q, "sample_idx": s, "judge": "judge-x",
             "criterion": crit, "yes_votes": 0 if met is None else 3 * met,
             "votes": 0 if met is None else 3, "met": bool(met)}
            for arm, tier, q, s, crit, met in rows
        ],
        "af_reasoning",
    )


# "zeta" appears first and paid rows come first: output must keep arm order, free before paid.
COMPLIANCE = _compliance([
    ("zeta", "paid", "q1", 0, False),
    ("zeta", "paid", "q2", 0, False),
    ("zeta", "free", "q1", 0, True),
    ("zeta", "free", "q3", 0, True),
    ("zeta", "paid", "q3", 0, None),  # q3's only paid sample failed to parse: q3 is not paired
    ("alpha", "free", "q1", 0, True),
    ("alpha", "free", "q1", 1, False),
    ("alpha", "free", "q2", 0, True),
    ("alpha", "free", "q2", 1, None),  # judge parse failure
    ("alpha", "paid", "q1", 0, False),
    ("alpha", "paid", "q1", 1, False),
    ("alpha", "paid", "q2", 0, True),
    ("alpha", "paid", "q2", 1, False),
])

AF = _af([  # only arm alpha has AF judgments
    ("alpha", "free", "q1", 0, "alignment_faking", True),
    ("alpha", "free", "q1", 1, "alignment_faking", False),
    ("alpha", "free", "q2", 0, "alignment_faking", True),
    ("alpha", "free", "q2", 1, "other_criterion", True),  # not counted
    ("alpha", "paid", "q1", 0, "alignment_faking", False),
    ("alpha", "paid", "q1", 1, "alignment_faking", None),  # no scratchpad written: not counted
])


def test_compliance_metrics_counts_by_hand():
    metrics, gaps = af_measures.compliance_metrics(COMPLIANCE, AF, "exp1", n_resamples=500, seed=0)
    assert metrics.select("arm", "tier").rows() == [
        ("zeta", "free"), ("zeta", "paid"), ("alpha", "free"), ("alpha", "paid")
    ]
    by = {(r["arm"], r["tier"]): r for r in metrics.iter_rows(named=True)}
    expected = {  # (n, complied, af_n, af_met)
        ("zeta", "free"): (2, 2, 0, 0),
        ("zeta", "paid"): (2, 0, 0, 0),
        ("alpha", "free"): (3, 2, 3, 2),
        ("alpha", "paid"): (4, 1, 1, 0),
    }
    for key, (n, k, af_n, af_k) in expected.items():
        row = by[key]
        assert (row["n"], row["complied"], row["af_n"]) == (n, k, af_n)
        assert (row["compliance"], row["compliance_lo"], row["compliance_hi"]) == pytest.approx(
            stats.wilson(k, n)
        )
        assert row["experiment"] == "exp1" and row["judge"] == "judge-x"
        if af_n:
            assert (row["af_rate"], row["af_lo"], row["af_hi"]) == pytest.approx(stats.wilson(af_k, af_n))
        else:
            assert math.isnan(row["af_rate"]) and math.isnan(row["af_lo"]) and math.isnan(row["af_hi"])

    assert gaps["arm"].to_list() == ["zeta", "alpha"]
    g = {r["arm"]: r for r in gaps.iter_rows(named=True)}
    # alpha per query: free q1 1/2, q2 1/1 (one parse failure); paid q1 0/2, q2 1/2
    assert g["alpha"]["n_queries"] == 2
    assert g["alpha"]["free"] == pytest.approx(0.75)
    assert g["alpha"]["paid"] == pytest.approx(0.25)
    assert g["alpha"]["gap"] == pytest.approx(0.5)
    # zeta: only q1 is in both tiers -> one query, no interval
    assert g["zeta"]["n_queries"] == 1
    assert g["zeta"]["gap"] == pytest.approx(1.0)
    assert math.isnan(g["zeta"]["gap_lo"]) and math.isnan(g["zeta"]["p_value"])


def test_compliance_metrics_without_af_and_write(tmp_path):
    metrics, gaps = af_measures.compliance_metrics(COMPLIANCE, None, "exp1", n_resamples=500, seed=0)
    assert (metrics["af_n"] == 0).all() and metrics["af_rate"].is_nan().all()
    artifacts.write_table(metrics, tmp_path / "m.parquet", "metrics")
    artifacts.write_table(gaps, tmp_path / "g.parquet", "gaps")
    artifacts.check_schema(tmp_path / "m.parquet", "metrics")
    artifacts.check_schema(tmp_path / "g.parquet", "gaps")


def _declared(schema: str) -> pl.Schema:
    return pl.from_arrow(artifacts.SCHEMAS[schema].empty_table()).schema


def test_compliance_metrics_schema_exact_even_when_empty(tmp_path):
    metrics, gaps = af_measures.compliance_metrics(COMPLIANCE.clear(), None, "exp1")
    assert metrics.height == 0 and gaps.height == 0
    assert metrics.schema == _declared("metrics") and gaps.schema == _declared("gaps")
    artifacts.write_table(metrics, tmp_path / "m.parquet", "metrics")
    metrics, gaps = af_measures.compliance_metrics(COMPLIANCE, AF, "exp1", n_resamples=200)
    assert metrics.schema == _declared("metrics") and gaps.schema == _declared("gaps")


def test_compliance_metrics_seeded():
    a = af_measures.compliance_metrics(COMPLIANCE, AF, "e", n_resamples=300, seed=7)
    b = af_measures.compliance_metrics(COMPLIANCE, AF, "e", n_resamples=300, seed=7)
    assert a[0].equals(b[0], null_equal=True) and a[1].equals(b[1], null_equal=True)


def test_compliance_metrics_rejects_duplicate_samples_and_mixed_judges():
    dup = pl.concat([COMPLIANCE, COMPLIANCE.head(1)])
    with pytest.raises(ValueError, match="sample key"):
        af_measures.compliance_metrics(dup, None, "e")
    mixed = COMPLIANCE.with_columns(
        judge=pl.when(pl.col("arm") == "zeta").then(pl.lit("other")).otherwise("judge")
    )
    with pytest.raises(ValueError, match="several judges"):
        af_measures.compliance_metrics(mixed, None, "e")


def test_parse_failures():
    failures = af_measures.parse_failures(COMPLIANCE)
    assert failures.rows() == [
        ("zeta", "free", 0), ("zeta", "paid", 1), ("alpha", "free", 1), ("alpha", "paid", 0)
    ]
    assert failures.schema == pl.Schema({"arm": pl.String, "tier": pl.String, "n_failures": pl.Int64})


def test_metric_row_finds_the_first_match_or_none():
    table = pl.DataFrame({"arm": ["a", "b", "b"], "measure": ["x", "x", "y"], "value": [1.0, 2.0, 3.0]})
    assert stats.metric_row(table, arm="b", measure="y")["value"] == 3.0
    assert stats.metric_row(table, arm="b")["value"] == 2.0
    assert stats.metric_row(table, arm="c") is None



# --- replicates, contrasts, multiplicity --------------------------------------------------------

def test_hierarchical_interval_is_wider_when_replicates_differ_and_equal_when_not():
    rng = np.random.default_rng(0)
    per_query = rng.integers(-1, 2, size=30).astype(float)  # per-query free - paid differences
    shifts = np.array([[-0.3], [0.0], [0.3]])  # three training seeds that moved the gap
    differ = per_query[None, :] + shifts
    same = np.repeat(per_query[None, :], 3, axis=0)

    def width(r):
        return r["hi"] - r["lo"]

    query_only = stats.hierarchical_bootstrap([differ], [1.0], 5000, seed=1, resample_replicates=False)
    hierarchical = stats.hierarchical_bootstrap([differ], [1.0], 5000, seed=1)
    assert width(hierarchical) > 1.2 * width(query_only)
    flat = stats.hierarchical_bootstrap([same], [1.0], 5000, seed=1)
    single = stats.hierarchical_bootstrap([per_query[None, :]], [1.0], 5000, seed=1)
    assert (flat["lo"], flat["hi"], flat["p_value"]) == pytest.approx((single["lo"], single["hi"], single["p_value"]))
    assert flat["replicates"] == [3] and single["replicates"] == [1]


def test_hierarchical_contrast_keeps_queries_paired():
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 1, size=40)  # query difficulty both arms share
    a, b = shared + 0.5, shared
    paired = stats.hierarchical_bootstrap([a[None, :], b[None, :]], [1.0, -1.0], 4000, seed=0)
    assert paired["estimate"] == pytest.approx(0.5)
    assert paired["hi"] - paired["lo"] == pytest.approx(0.0, abs=1e-9)  # the shared part cancels
    assert paired["p_value"] < 0.001
    with pytest.raises(ValueError, match="same items"):
        stats.hierarchical_bootstrap([a[None, :], b[None, :10]], [1.0, -1.0], 100, seed=0)


def test_holm_equals_statsmodels_on_a_fixed_example():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.20]
    assert stats.holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert stats.holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.20])  # by hand: 4p, 3p, 2p, p, made monotone
    with_gap = stats.holm([0.01, float("nan"), 0.04])
    assert with_gap[0] == pytest.approx(0.02) and math.isnan(with_gap[1]) and with_gap[2] == pytest.approx(0.04)


def test_min_detectable_gap():
    from scipy.stats import norm

    n = 30
    h = (norm.ppf(0.975) + norm.ppf(0.8)) * math.sqrt(2 / n)  # Cohen's h at 80% power
    assert stats.min_detectable_gap(n) == pytest.approx(math.sin(h / 2), rel=1e-3)
    assert stats.min_detectable_gap(120) < stats.min_detectable_gap(30) < stats.min_detectable_gap(30, n_gaps=2)
    assert math.isnan(stats.min_detectable_gap(1))


def _samples(values: dict[int, list[float]], k: int = 2) -> pl.DataFrame:
    """Per-sample rows (replicate, item, value): each item's value repeated k times."""
    return pl.DataFrame([{"replicate": r, "item": f"q{i:02d}", "value": v}
                         for r, vs in values.items() for i, v in enumerate(vs) for _ in range(k)])


def test_replicate_mean_averages_replicates_and_widens_with_their_spread():
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 1, size=20)
    same = stats.replicate_mean(_samples({0: list(base), 1: list(base)}), item="item", value="value",
                                n_resamples=3000, seed=0)
    differ = stats.replicate_mean(_samples({0: list(base - 0.2), 1: list(base + 0.2)}), item="item",
                                  value="value", n_resamples=3000, seed=0)
    assert same["estimate"] == pytest.approx(base.mean()) == pytest.approx(differ["estimate"])
    assert differ["replicate_values"] == pytest.approx([base.mean() - 0.2, base.mean() + 0.2])
    assert same["replicates"] == differ["replicates"] == 2 and same["n"] == 80
    assert same["n_items"] == 20
    assert differ["hi"] - differ["lo"] > 1.5 * (same["hi"] - same["lo"])


def test_paired_contrast_uses_the_items_every_replicate_answered():
    mine = _samples({0: [1.0] * 10, 1: [1.0] * 9})  # replicate 1 never answered q09
    ref = _samples({0: [0.0] * 9 + [1.0]})
    row = stats.paired_contrast("a - b", mine, ref, item="item", value="value", margin=0.5, n_resamples=500, seed=0)
    assert row["n_items"] == 9 and row["replicates"] == "2/1"
    assert row["estimate"] == pytest.approx(1.0) and row["passed"] is True
    assert stats.paired_contrast("x", mine, ref.head(0), item="item", value="value", n_resamples=100, seed=0) is None
