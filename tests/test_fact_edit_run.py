"""End to end: the fact_edit kind on its tiny config (the 135M model), in a copy of the workflow:
facts filtered on the base (some held out), one job per penalty setting (edits to a criterion, the
null edit), the aggregate. Checks the artifacts' schemas, that only the configured layers were
reported, the proximal L1's exact zeros, the fame-weighted copies, the second fact measured where the
base knows it, intervals over edits, the four controls' verdicts being reported, and the
probes' Inspect logs."""

from __future__ import annotations

import pytest

from alignlab import artifacts
from workflow import REPO, check_schemas, run_config

pytestmark = pytest.mark.slow

CONFIG = REPO / "tests" / "configs" / "tiny_fact_edit.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory, output_cache):
    return run_config(tmp_path_factory.mktemp("fe"), CONFIG, "facts", output_cache, timeout=1800)


def test_artifacts_and_controls(run):
    _, cfg, results = run
    expected = {"facts.parquet": "fe_facts", "metrics.parquet": "fe_metrics"}
    for s in cfg["penalties"]:
        expected.update({f"settings/{s}/{t}.parquet": f"fe_{t}" for t in ("runs", "layers", "overlap", "probes")})
    expected["inspect/index.parquet"] = "inspect_logs"
    check_schemas(results, expected)
    assert (results / "layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    facts = artifacts.read_table(results / "facts.parquet", "fe_facts")
    held = set(facts.filter(facts["held_out"])["subject"].to_list())
    assert len(held) == cfg["facts"]["n_held_out"] and facts.filter(facts["held_out"])["kept"].all()
    layers = artifacts.read_table(results / "settings/none/layers.parquet", "fe_layers")
    assert set(layers["layer"].to_list()) == set(cfg["edit"]["layers"])
    runs = artifacts.read_table(results / "settings/none/runs.parquet", "fe_runs")
    assert not held & set(runs["subject"].to_list())
    assert (runs["steps_taken"] <= cfg["edit"]["steps"]).all()
    m = {r["setting"]: r for r in artifacts.read_table(results / "metrics.parquet", "fe_metrics").iter_rows(named=True)}
    assert m["none"]["weight_change"] > m["l1_large"]["weight_change"]
    # the proximal L1 leaves weights exactly in place; without penalty Adam moves nearly all
    assert m["none"]["moved_weights"] > 0.9 > m["l1_large"]["moved_weights"]
    for r in m.values():
        assert 0 <= r["held_out_specificity"] <= 1 and r["text_loss_change"] == r["text_loss_change"]
        assert r["fact_change"] > 0 and r["null_weight_change"] > 0  # W_edit - W_null: the changed fact moved something
    # fame-weighted copies (edit.copies by fame, max 3): each edited fact's count from its fame
    fame = dict(zip(facts["subject"].to_list(), facts["fame"].to_list()))
    assert runs["train_copies"].to_list() == [1 + int(2 * fame[s] + 0.5) for s in runs["subject"].to_list()]
    # the second fact: measured exactly on the edits whose athlete's country the base knows
    known = set(facts.filter(facts["second_known"])["subject"].to_list())
    for r in runs.iter_rows(named=True):
        measured = r["same_subject_specificity"] == r["same_subject_specificity"]
        assert r["second_known"] == (r["subject"] in known) == measured
    for r in m.values():  # intervals over edits (2 facts x 2 seeds) around the means
        assert r["efficacy_lo"] <= r["efficacy"] <= r["efficacy_hi"]
        assert r["weight_change_lo"] <= r["weight_change"] <= r["weight_change_hi"]
    # the probes as Inspect logs: every probe row of a setting is a sample of its two logs
    from alignlab import inspect_logs

    probes = artifacts.read_table(results / "settings/none/probes.parquet", "fe_probes")
    samples = [s for kind in ("edit", "null") for s in inspect_logs.read_samples(str(results / f"inspect/none.{kind}.eval"))]
    assert len(samples) == probes.height and {s.metadata["edit"] for s in samples} == {"edit", "null"}
    assert sum(s.scores["as_expected"].value for s in samples) == (probes["answer"] == probes["expected"]).sum()
    text = (results / "summary.md").read_text()
    assert "**Penalty check PASSED** (L1 PASSED)" in text
    assert "**Specificity check " in text and "**Localization check " in text
    assert ("**Same-subject check NOT MEASURED**" in text) == (not known & set(runs["subject"].to_list()))
    assert "**Same-subject check " in text and "| penalty | edits | copies | steps |" in text
