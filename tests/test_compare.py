"""`alignlab compare`: two small result folders written with the kinds' real schemas, where B
differs from A in exactly one template hash, one table's params hash, one row's prompt hash and
one metric value; the comparison must find exactly those, and nothing against an exact copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from alignlab import artifacts, cli, compare, kinds

SRC = Path(__file__).resolve().parents[1] / "src"
TEMPLATES = {"system_prompted.jinja": "a" * 64, "user.jinja": "b" * 64}


def samples(changed_prompt: bool = False) -> list[dict]:
    rows = []
    for query in ("q1", "q2"):
        for tier in ("free", "paid"):
            prompt = f"{tier} {query}"
            if changed_prompt and (query, tier) == ("q2", "paid"):
                prompt += " (edited)"
            rows.append({
                "experiment": "af", "arm": "prompted", "replicate": 0, "tier": tier, "query_id": query,
                "category": "c", "sample_idx": 0, "seed": 7, "prompt_sha256": artifacts.sha256_text(prompt),
                "system_template_sha256": "a" * 64, "user_template_sha256": "b" * 64,
                "chat_template_sha256": "c" * 64, "prompt": prompt, "response": "r", "scratchpad": "",
                "output": "r", "n_prompt_tokens": 5, "n_output_tokens": 1, "finish_reason": "stop",
                "model": "tiny", "adapter": "",
            })
    return rows


def metrics(free_compliance: float = 0.2) -> list[dict]:
    def row(tier, compliance):
        return {
            "experiment": "af", "arm": "prompted", "tier": tier, "judge": "rule", "replicates": 1, "n": 10,
            "complied": 2, "partial": 0, "refused": 8, "no_answer": 0, "truncated": 0,
            "compliance": compliance, "compliance_lo": compliance - 0.1, "compliance_hi": compliance + 0.1,
            "af_n": 2, "af_rate": 0.5, "af_lo": 0.1, "af_hi": 0.9, "pad_judged": 2, "pad_complied": 1, "af_complied": 1,
        }

    return [row("free", free_compliance), row("paid", 0.1)]


CONTRASTS = [{
    "experiment": "af", "contrast": "gap (prompted)", "estimate": 0.1, "lo": -0.05, "hi": 0.25, "p_value": 0.2,
    "p_holm": 0.2, "min_detectable": 0.3, "n_items": 2, "replicates": "1", "margin": None, "passed": None,
}]


def write_run(root: Path, drifted: bool = False) -> Path:
    templates = {**TEMPLATES, "user.jinja": "d" * 64} if drifted else TEMPLATES
    artifacts.write_table(samples(changed_prompt=drifted), root / "af/samples.parquet", "samples",
                          params={"temperature": 1.0}, templates=templates)
    artifacts.write_table(metrics(0.5 if drifted else 0.2), root / "af/metrics.parquet", "metrics",
                          params={"bootstrap": 2000 if drifted else 1000})
    artifacts.write_table(CONTRASTS, root / "af/contrasts.parquet", "contrasts", params={"bootstrap": 1000})
    return root


@pytest.fixture()
def runs(tmp_path):
    return write_run(tmp_path / "a"), write_run(tmp_path / "b", drifted=True)


def differing_metrics(comparison: pl.DataFrame) -> pl.DataFrame:
    metric_rows = comparison.filter(pl.col("section") == "metric")
    return metric_rows.filter(pl.col("value_a").fill_nan(None).ne_missing(pl.col("value_b").fill_nan(None)))


def test_finds_exactly_the_drift_and_the_changed_metric(runs):
    comparison = compare.compare(*runs)
    assert set(comparison["section"]) == {"drift", "metric"}  # no table or row in one run only
    drift = comparison.filter(pl.col("section") == "drift")
    assert sorted(drift.select("table", "item", "name").rows()) == [
        ("af/metrics.parquet", "params_sha256", None),
        ("af/samples.parquet", "prompt_sha256", None),
        ("af/samples.parquet", "template_sha256", "user.jinja"),
    ]
    template = drift.filter(pl.col("item") == "template_sha256").row(0, named=True)
    assert (template["a"], template["b"]) == ("b" * 64, "d" * 64)
    prompt = drift.filter(pl.col("item") == "prompt_sha256").row(0, named=True)
    assert (prompt["rows_matched"], prompt["rows_differing"]) == (4, 1)
    assert prompt["matched_by"] == "experiment, arm, replicate, tier, query_id"
    assert prompt["a"] == artifacts.sha256_text("paid q2")
    assert prompt["b"] == artifacts.sha256_text("paid q2 (edited)")

    changed = differing_metrics(comparison)
    assert changed.height == 1
    row = changed.row(0, named=True)
    assert (row["table"], row["item"]) == ("af/metrics.parquet", "compliance")
    assert row["key"] == "experiment=af, arm=prompted, tier=free, judge=rule"
    assert row["value_a"] == pytest.approx(0.2) and row["value_b"] == pytest.approx(0.5)
    assert (row["lo_a"], row["hi_b"]) == (pytest.approx(0.1), pytest.approx(0.6))
    assert row["difference"] == pytest.approx(0.3)
    assert row["intervals_overlap"] is False

    # Every metric of both summary tables is compared: 2 rows x (compliance, af_rate) and the
    # contrast's estimate, p_value, p_holm, min_detectable, margin; intervals are not metrics.
    compared = comparison.filter(pl.col("section") == "metric")
    assert compared.height == 2 * 2 + 5
    assert not compared["item"].str.ends_with("_lo").any()
    assert set(compared.filter(pl.col("item") == "af_rate")["lo_a"]) == {0.1}


def test_an_exact_copy_has_no_drift_and_no_difference(runs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(runs[0], copy)
    comparison = compare.compare(runs[0], copy)
    assert comparison.filter(pl.col("section") != "metric").is_empty()
    assert differing_metrics(comparison).is_empty()
    assert comparison.height == 9
    assert "No drift" in compare.markdown(comparison, runs[0], copy)
    assert "No drift" not in compare.markdown(compare.compare(*runs), *runs)


def test_tables_and_rows_in_one_run_only_and_changed_columns(runs):
    run_a, run_b = runs
    artifacts.write_table(CONTRASTS, run_b / "af/extra/contrasts.parquet", "contrasts")
    artifacts.write_table(metrics()[:1], run_a / "af/metrics.parquet", "metrics")
    (run_a / "af/.contrasts.parquet.x.tmp").mkdir()  # a killed writer's temporary is no table
    artifacts.write_table(CONTRASTS, run_a / "af/.contrasts.parquet.x.tmp/t.parquet", "contrasts")
    pl.DataFrame({"x": [1]}).write_parquet(run_a / "af/other.parquet")
    pl.DataFrame({"x": ["1"], "y": [2.0]}).write_parquet(run_b / "af/other.parquet")

    comparison = compare.compare(run_a, run_b)
    assert comparison.filter(pl.col("section") == "table").select("table", "item").rows() == [
        ("af/extra/contrasts.parquet", "only_in_b")
    ]
    assert comparison.filter(pl.col("section") == "row").select("table", "item", "key").rows() == [
        ("af/metrics.parquet", "only_in_b", "experiment=af, arm=prompted, tier=paid, judge=rule")
    ]
    columns = comparison.filter((pl.col("section") == "drift") & (pl.col("item") == "columns")).row(0, named=True)
    assert (columns["table"], columns["a"], columns["b"]) == ("af/other.parquet", "x (Int64)", "x (String), y (Float64)")
    only_a = compare.compare(run_a, run_b, pattern="af/metrics.parquet")
    assert set(only_a["table"]) == {"af/metrics.parquet"}


def test_rows_with_repeated_keys_are_matched_in_file_order(tmp_path):
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
    rows = [{"arm": "x", "h_sha256": h, "value": v} for h, v in (("1", 0.1), ("2", 0.2))]
    pl.DataFrame(rows).write_parquet(tmp_path / "a/metrics.parquet")
    rows[1] |= {"h_sha256": "3", "value": 0.4}
    pl.DataFrame(rows).write_parquet(tmp_path / "b/metrics.parquet")
    comparison = compare.compare(tmp_path / "a", tmp_path / "b")
    drift = comparison.filter(pl.col("section") == "drift").row(0, named=True)
    assert (drift["matched_by"], drift["rows_differing"], drift["a"], drift["b"]) == ("arm, occurrence", 1, "2", "3")
    assert differing_metrics(comparison)["key"].to_list() == ["arm=x, occurrence=1"]


def test_metric_columns_and_their_intervals():
    schemas = {name: pl.from_arrow(artifacts.SCHEMAS[name].empty_table()).schema
               for name in ("metrics", "contrasts", "gaps", "replication", "pl_weak_grid", "md_metrics")}
    af = compare.metric_columns(schemas["metrics"])
    assert af == {"compliance": ("compliance_lo", "compliance_hi"), "af_rate": ("af_lo", "af_hi")}
    assert compare.metric_columns(schemas["contrasts"])["estimate"] == ("lo", "hi")
    assert compare.metric_columns(schemas["gaps"])["gap"] == ("gap_lo", "gap_hi")
    replication = compare.metric_columns(schemas["replication"])
    assert replication == {"ours": ("ours_lo", "ours_hi"), "published": ("published_lo", "published_hi")}
    assert compare.metric_columns(schemas["pl_weak_grid"]) == {"accuracy": ("lo", "hi"), "weak_rate": (None, None)}
    md = compare.metric_columns(schemas["md_metrics"])
    assert md["global_mean_cosine"] == ("global_mean_cosine_lo", "global_mean_cosine_hi")
    assert md["diff_next_lo"] == (None, None)  # a bound without its value is a metric of its own


def test_every_float_column_of_every_table_is_a_metric_or_a_bound():
    kinds.load()
    for name in list(artifacts.SCHEMAS):
        schema = pl.from_arrow(artifacts.SCHEMAS[name].empty_table()).schema
        columns = compare.metric_columns(schema)
        covered = set(columns) | {c for bounds in columns.values() for c in bounds if c}
        assert covered == {c for c, t in schema.items() if t.is_float()}, name


def test_summary_tables_come_from_the_kinds():
    names = compare.summary_table_names()
    assert {"metrics", "contrasts", "replication", "gaps"} <= names
    assert "samples" not in names


def test_cli_subprocess_writes_markdown_and_parquet(runs, tmp_path):
    out = tmp_path / "out/comparison.parquet"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "alignlab.cli", "compare", *map(str, runs), "--out", str(out)],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "template `user.jinja`: `bbbbbbbbbbbb` (A) vs `dddddddddddd` (B)" in done.stdout
    assert "`prompt_sha256`: 1 of 4 rows differ" in done.stdout
    assert "| experiment=af, arm=prompted, tier=free, judge=rule | compliance | 0.2 [0.1, 0.3] | 0.5 [0.4, 0.6] | +0.3 | **no** |" in done.stdout
    written = artifacts.read_table(out, "run_comparison")
    assert written.equals(compare.compare(*runs))

    missing = tmp_path / "missing"
    done = subprocess.run([sys.executable, "-m", "alignlab.cli", "compare", str(runs[0]), str(missing)],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == f"alignlab compare: error: {missing}: no such folder"


def test_main_reports_bad_input_without_a_traceback(runs, tmp_path, capsys):
    assert cli.main(["compare", str(runs[0]), str(runs[1])]) == 0
    assert "## Metrics" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert cli.main(["compare", str(tmp_path / "empty"), str(runs[1])]) == 2
    assert "empty: no tables" in capsys.readouterr().err
    (runs[1] / "af/broken.parquet").write_text("not parquet")
    (runs[0] / "af/broken.parquet").write_text("not parquet")
    assert cli.main(["compare", str(runs[0]), str(runs[1])]) == 2
    assert "broken.parquet: cannot read it as Parquet" in capsys.readouterr().err


def test_rows_measured_differently_are_not_matched(runs):
    """Each run has one judge: the leading string columns (the judge among them) keep the rule
    judge's row from being compared with the other judge's."""
    run_a, run_b = runs
    artifacts.write_table([{**r, "judge": "llm"} for r in metrics()], run_b / "af/metrics.parquet", "metrics")
    comparison = compare.compare(run_a, run_b, pattern="af/metrics.parquet")
    assert comparison.filter(pl.col("section") == "metric").is_empty()
    assert sorted(comparison.filter(pl.col("section") == "row").select("item", "key").rows()) == [
        ("only_in_a", "experiment=af, arm=prompted, tier=free, judge=rule"),
        ("only_in_a", "experiment=af, arm=prompted, tier=paid, judge=rule"),
        ("only_in_b", "experiment=af, arm=prompted, tier=free, judge=llm"),
        ("only_in_b", "experiment=af, arm=prompted, tier=paid, judge=llm"),
    ]


def test_samples_only_one_run_has_are_counted(runs):
    run_a, run_b = runs
    artifacts.write_table(samples(changed_prompt=True)[:3], run_b / "af/samples.parquet", "samples", templates=TEMPLATES)
    drift = compare.compare(run_a, run_b, pattern="af/samples.parquet").filter(pl.col("section") == "drift")
    rows = drift.filter(pl.col("item") == "rows").row(0, named=True)
    assert (rows["a"], rows["b"], rows["rows_matched"]) == ("1", "0", 3)
    assert "prompt_sha256" not in drift["item"].to_list()  # the edited prompt's row is the missing one


def test_the_readme_excerpt_is_this_output(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Comparing two runs", 1)[1]
    excerpt = section.split("the output is:\n\n```\n", 1)[1].split("\n```\n", 1)[0]
    monkeypatch.chdir(tmp_path)
    write_run(Path("run1/results")), write_run(Path("run2/results"), drifted=True)
    output = compare.markdown(compare.compare("run1/results", "run2/results"), "run1/results", "run2/results")
    shown = [line for line in excerpt.splitlines() if line != "..."]
    assert len(shown) > 20 and set(shown) <= set(output.splitlines())
