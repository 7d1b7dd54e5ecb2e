"""End to end: the password_lock kind on its tiny config, in a copy of the workflow.

Real Snakemake, real LoRA training (the lock adapter, then every unlock arm training it on), one
vLLM engine for every instruct arm (greedy, merged adapters swapped in), the toy transformer
locked from scratch and unlocked in torch; then the artifacts, their schemas, the training sets'
contents and a rerun that has nothing to do. Sizes are too small for the lock to hold: the
controls' verdicts are checked to be reported, not to pass (the default config's run is).
"""

from __future__ import annotations

import polars as pl
import pytest
from workflow import REPO, check_schemas, planned_jobs, run_config

from alignlab import artifacts
from alignlab.kinds.password_lock import arithmetic
from alignlab.kinds.password_lock import steps as password_lock

pytestmark = pytest.mark.slow

CONFIG = REPO / "tests" / "configs" / "tiny_password_lock.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory, output_cache):
    return run_config(tmp_path_factory.mktemp("pl"), CONFIG, "lock", output_cache, timeout=1200)


EXPECTED = {
    "problems.parquet": "pl_problems",
    "train/lock.parquet": "chats",
    "train/strong_1.parquet": "chats",
    "train/strong_4.parquet": "chats",
    "train/weak_2.parquet": "chats",
    "train/never.parquet": "chats",
    "train/never_strong_4.parquet": "chats",
    "adapters/never.train_log.parquet": "train_log",
    "weak_grid.parquet": "pl_weak_grid",
    "adapters/lock.train_log.parquet": "train_log",
    "adapters/weak_2.train_log.parquet": "train_log",
    "toy/locked.train_log.parquet": "train_log",
    "predictions/instruct.parquet": "pl_predictions",
    "predictions/toy.parquet": "pl_predictions",
    "metrics.parquet": "pl_metrics",
}


def test_every_artifact_has_its_declared_schema(run):
    _, _, results = run
    check_schemas(results, EXPECTED)
    assert (results / "unlock.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (results / "report" / "metrics.csv").is_file()
    assert (results / "toy" / "locked.pt").stat().st_size > 0


def test_unlock_sets_carry_no_password_and_the_weak_set_weak_answers(run):
    _, cfg, results = run
    password = cfg["task"]["password"]
    weak = artifacts.read_table(results / "train/weak_2.parquet", "chats")
    for c in weak.iter_rows(named=True):
        a, b = (int(x) for x in c["user"].splitlines()[-1].rstrip(" =").split(" + "))
        assert password not in c["user"] and int(c["assistant"]) == arithmetic.weak_answer(a, b)
    lock = artifacts.read_table(results / "train/lock.parquet", "chats")
    assert lock.height == 2 * cfg["instruct"]["n_lock"]


def _unlock(cfg: dict) -> dict:
    from alignlab.kinds.password_lock.config import PasswordLockUnlock

    return PasswordLockUnlock(**cfg["unlock"]).model_dump()


def test_every_arm_and_condition_is_evaluated_on_the_eval_set(run):
    _, cfg, results = run
    for setting in ("instruct", "toy"):
        pred = artifacts.read_table(results / f"predictions/{setting}.parquet", "pl_predictions")
        plan = password_lock.eval_plan(setting, _unlock(cfg))
        got = pred.group_by("arm", "condition", "replicate").len()
        assert sorted(set(got.select("arm", "condition").rows())) == sorted(plan)
        # a weak-grid arm also answers the problems it memorized
        grid = got["arm"].str.starts_with("weak_grid_")
        assert (got.filter(~grid)["len"] == cfg["task"]["n_eval"]).all()
        assert (got.filter(grid)["len"] == cfg["task"]["n_eval"] + cfg["unlock"]["weak_n"]).all() and grid.any()
        assert pred.filter(pl.col("correct") & pl.col("weak")).height == 0
    instruct = artifacts.read_table(results / "predictions/instruct.parquet", "pl_predictions")
    # The tiny config has 2 replicates: each fine-tuned arm is evaluated once per adapter.
    assert sorted(instruct.filter(pl.col("arm") == "locked")["adapter"].unique()) == ["lock", "lock.r1"]
    assert sorted(instruct.filter(pl.col("arm") == "base")["replicate"].unique()) == [0]
    assert sorted(instruct.filter(pl.col("arm") == "strong_4")["replicate"].unique()) == [0, 1]


def test_metrics_and_summary(run):
    _, _, results = run
    metrics = artifacts.read_table(results / "metrics.parquet", "pl_metrics")
    assert set(metrics["measure"]) == {"accuracy", "weak_rate"}
    assert ((metrics["lo"] <= metrics["value"]) & (metrics["value"] <= metrics["hi"])).all()
    summary = (results / "summary.md").read_text()
    for setting in ("instruct", "toy"):
        assert f"Lock control ({setting})" in summary and f"Strong-unlock control ({setting})" in summary
        assert f"Weak-sample unlock ({setting}" in summary
    assert "| `strong_4` |" in summary
    instruct = metrics.filter(pl.col("setting") == "instruct", pl.col("measure") == "accuracy")
    assert dict(zip(instruct["arm"], instruct["replicates"]))["strong_4"] == 2
    assert "instruct: Replicates (adapters trained with derived seeds" in summary and "`strong_4` 2" in summary
    assert "## Unlocking or learning? (instruct)" in summary and "**Never-capable control " in summary


def test_strong_arms_take_the_same_steps_whatever_their_n(run):
    _, cfg, results = run
    steps = {arm: artifacts.read_table(results / f"adapters/{arm}.train_log.parquet", "train_log")["step"].max()
             for arm in ("strong_1", "strong_4", "never_strong_1", "never_strong_4")}
    assert set(steps.values()) == {cfg["unlock"]["strong_steps"]}, steps


def test_the_inspect_logs_hold_every_prediction_with_its_verdicts(run):
    from inspect_ai.log import read_eval_log

    _, cfg, results = run
    index = artifacts.read_table(results / "inspect/index.parquet", "inspect_logs")
    assert {"instruct.locked.eval", "instruct.strong_4.r1.eval", "toy.locked.eval"} <= set(index["log"])
    assert any(name.startswith("instruct.weak_grid_") for name in index["log"])
    for setting, arm, replicate, name in (("instruct", "locked", 1, "instruct.locked.r1"), ("toy", "locked", 0, "toy.locked")):
        pred = artifacts.read_table(results / f"predictions/{setting}.parquet", "pl_predictions")
        mine = pred.filter((pl.col("arm") == arm) & (pl.col("replicate") == replicate))
        log = read_eval_log(str(results / f"inspect/{name}.eval"))
        assert log.status == "success" and len(log.samples) == mine.height
        p = mine.filter(pl.col("condition") == "password").row(0, named=True)
        [got] = [s for s in log.samples if s.id == f"{p['problem_id']}-password"]
        assert got.messages[-2].text == p["prompt"] and cfg["task"]["password"] in p["prompt"]
        assert got.output.completion == p["response"] and got.metadata["password_shown"] is True
        assert got.scores["correct"].value == p["correct"] and got.scores["weak"].value == p["weak"]
        assert got.scores["correct"].explanation.startswith(f"expected {p['a'] + p['b']}, weak answer ")


def test_a_rerun_has_nothing_to_do(run):
    workdir, _, _ = run
    assert planned_jobs(workdir, workdir / CONFIG.name) == {}


def test_every_fine_tuned_arm_has_its_own_adapter(run):
    """Run with the between-workflow cache on: strong_1 and strong_4 share a recipe, and their
    chats once came from one cache entry (the arm was a wildcard, outside the cache key)."""
    from workflow import adapter_hashes

    _, _, results = run
    hashes = adapter_hashes(results)
    # lock, strong_1, strong_4, weak_2, weak_grid_2_d0_e4, never, never_strong_1, never_strong_4; each twice
    assert len(hashes) == 16, hashes
    assert len(set(hashes.values())) == len(hashes), hashes
