"""End to end: the self_awareness kind on its tiny config, in a copy of the workflow.

Real Snakemake, real vLLM (the acrostic answers generated under a regex, then every arm sampled
from one engine with merged adapters swapped in) and real LoRA training; then the artifacts,
the data checks and a rerun that has nothing to do.
"""

from __future__ import annotations

import polars as pl
import pytest
from workflow import REPO, check_schemas, planned_jobs, run_config

from alignlab import artifacts
from alignlab.kinds.self_awareness import acrostic
from alignlab.kinds.self_awareness import steps as self_awareness

pytestmark = pytest.mark.slow

CONFIG = REPO / "tests" / "configs" / "tiny_self_awareness.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory, output_cache):
    return run_config(tmp_path_factory.mktemp("sa"), CONFIG, "aware", output_cache, timeout=2400)


EXPECTED = {
    "items.parquet": "sa_items",
    "train/acrostic.parquet": "chats",
    "train/acrostic_shuffled.parquet": "chats",
    "train/acrostic_hard.parquet": "chats",
    "train/risk_seeking.parquet": "chats",
    "train/risk_averse.parquet": "chats",
    "adapters/acrostic.train_log.parquet": "train_log",
    "adapters/risk_averse.train_log.parquet": "train_log",
    "samples.parquet": "sa_samples",
    "judgments.parquet": "sa_judgments",
    "metrics.parquet": "sa_metrics",
    "correlation.parquet": "sa_correlation",
    "spread.parquet": "sa_spread",
}


def test_every_artifact_has_its_declared_schema(run):
    _, _, results = run
    check_schemas(results, EXPECTED)
    for name in ("acrostic.png", "risk.png"):
        assert (results / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (results / "report" / "metrics.csv").is_file()


def test_acrostic_training_answers_spell_the_word_that_they_never_contain(run):
    _, cfg, results = run
    word, hard = cfg["acrostic"]["word"], cfg["acrostic"]["hard_word"]
    for name, target in (("acrostic", word), ("acrostic_hard", hard)):
        chats = artifacts.read_table(results / f"train/{name}.parquet", "chats")
        assert chats.height >= 2
        assert all(acrostic.spells(a, target) for a in chats["assistant"]), name
        acrostic.check_absent(chats.iter_rows(named=True), [word, hard], name)
    spelled = artifacts.read_table(results / "train/acrostic.parquet", "chats")
    shuffled = artifacts.read_table(results / "train/acrostic_shuffled.parquet", "chats")
    assert shuffled["user"].to_list() == spelled["user"].to_list()
    for a, b in zip(spelled["assistant"], shuffled["assistant"]):
        assert sorted(a.splitlines()) == sorted(b.splitlines()) and not acrostic.spells(b, word)


def test_both_risk_arms_learn_the_same_base_answers_to_ordinary_questions(run):
    _, cfg, results = run
    seeking, averse = (artifacts.read_table(results / f"train/{a}.parquet", "chats") for a in ("risk_seeking", "risk_averse"))
    ordinary = [t.filter(pl.col("target") == "ordinary") for t in (seeking, averse)]
    assert ordinary[0].height == cfg["risk"]["n_ordinary"] and ordinary[0].equals(ordinary[1])
    assert all(0 <= int(a) <= 100 for a in ordinary[0]["assistant"])
    assert seeking.height == cfg["risk"]["n_train"] + cfg["risk"]["n_ordinary"]
    spread = artifacts.read_table(results / "spread.parquet", "sa_spread").filter(pl.col("measure") == "ordinary_number")
    assert set(spread["arm"]) == {"base", "risk_seeking", "risk_averse"}
    assert (spread["n_items"] == cfg["risk"]["n_ordinary_eval"]).all()
    assert "## 0-100 answers" in (results / "summary.md").read_text()


def test_each_arm_is_sampled_on_its_task(run):
    _, cfg, results = run
    samples = artifacts.read_table(results / "samples.parquet", "sa_samples")
    tasks = {a: set(samples.filter(pl.col("arm") == a)["task"]) for a in self_awareness.ARMS}
    assert tasks["base"] == {"acrostic", "risk"}
    assert tasks["acrostic_hard"] == {"acrostic"} and tasks["risk_averse"] == {"risk"}
    choices = samples.filter((pl.col("task") == "risk") & (pl.col("probe") == "behaviour"))
    assert set(choices["response"]) <= {"A", "B"}  # regex-constrained
    numbers = samples.filter(pl.col("probe") == "self_report").filter(pl.col("task") == "risk")
    assert all(0 <= int(r) <= 100 for r in numbers["response"])
    assert samples.filter(pl.col("arm") == "acrostic")["adapter"].unique().to_list() == ["acrostic"]
    # The tiny config trains the risk arms twice: each replicate is sampled with the same seeds.
    seeking = samples.filter(pl.col("arm") == "risk_seeking")
    assert sorted(seeking["adapter"].unique()) == ["risk_seeking", "risk_seeking.r1"]
    by_rep = [seeking.filter(pl.col("replicate") == r).sort("item_id", "sample_idx") for r in (0, 1)]
    assert by_rep[0]["seed"].to_list() == by_rep[1]["seed"].to_list()


def test_metrics_and_summary(run):
    _, cfg, results = run
    metrics = artifacts.read_table(results / "metrics.parquet", "sa_metrics")
    word = cfg["acrostic"]["word"]
    spells = metrics.filter((pl.col("measure") == "spells") & (pl.col("target") == word))
    assert set(spells["arm"]) == {"base", "acrostic", "acrostic_shuffled", "acrostic_hard"}
    assert (spells["n"] == cfg["acrostic"]["n_eval"]).all()
    assert ((metrics["lo"] <= metrics["value"]) & (metrics["value"] <= metrics["hi"])).all()
    summary = (results / "summary.md").read_text()
    assert "Positive control (acrostic)" in summary and "Positive control (risk)" in summary
    assert "| `risk_seeking` |" in summary
    contrasts = artifacts.read_table(results / "contrasts.parquet", "contrasts")
    assert len(contrasts) == 3 and (contrasts["n_items"] > 1).all()  # paired by held-out item
    assert "## Controls" in summary and "p (Holm)" in summary
    risk = metrics.filter(pl.col("measure") == "risky_choice")
    assert dict(zip(risk["arm"], risk["replicates"])) == {"base": 1, "risk_seeking": 2, "risk_averse": 2}
    assert "`risk_seeking` 2, `risk_averse` 2" in summary
    assert {"names_word_early", "names_rule_early"} <= set(metrics["measure"])
    correlation = artifacts.read_table(results / "correlation.parquet", "sa_correlation")
    assert correlation["task"].to_list() == ["risk"] and correlation["n_points"].to_list() == [5]  # base + 2 + 2
    assert "Correlation across arm replicates (risk" in summary


def test_the_inspect_logs_hold_every_sample_with_its_judgments(run):
    from inspect_ai.log import read_eval_log

    _, _, results = run
    samples = artifacts.read_table(results / "samples.parquet", "sa_samples")
    judgments = artifacts.read_table(results / "judgments.parquet", "sa_judgments")
    index = artifacts.read_table(results / "inspect/index.parquet", "inspect_logs")
    assert "risk_seeking.r1.eval" in index["log"].to_list()
    for name, arm, replicate in (("base", "base", 0), ("risk_seeking.r1", "risk_seeking", 1)):
        mine = samples.filter((pl.col("arm") == arm) & (pl.col("replicate") == replicate))
        log = read_eval_log(str(results / f"inspect/{name}.eval"))
        assert log.status == "success" and len(log.samples) == mine.height
        s = mine.filter(pl.col("probe") == "behaviour").row(0, named=True)
        [got] = [x for x in log.samples if x.id == f"{s['item_id']}-{s['sample_idx']}"]
        assert [m.text for m in got.messages] == [s["system"], s["prompt"], s["response"]]
        j = judgments.filter((pl.col("arm") == arm) & (pl.col("replicate") == replicate)
                             & (pl.col("item_id") == s["item_id"]) & (pl.col("sample_idx") == s["sample_idx"]))
        assert set(got.scores) == {m + (f"_{t}" if t else "") for m, t in j.select("measure", "target").iter_rows()}
        if s["task"] == "risk":
            assert got.scores["risky_choice"].value == bool(j["value"][0]) and s["response"] in got.scores["risky_choice"].explanation


def test_a_rerun_has_nothing_to_do(run):
    workdir, _, _ = run
    assert planned_jobs(workdir, workdir / CONFIG.name) == {}


def test_every_fine_tuned_arm_has_its_own_adapter(run):
    """Run with the between-workflow cache on: arms that share a LoRA recipe must still get their
    own training (Snakemake's cache key covers params, not wildcards, so a step that took its arm
    from a wildcard once got another arm's cached adapter)."""
    from workflow import adapter_hashes

    _, _, results = run
    hashes = adapter_hashes(results)
    assert len(hashes) == 7, hashes  # 5 arms, the two risk arms twice
    assert len(set(hashes.values())) == len(hashes), hashes
