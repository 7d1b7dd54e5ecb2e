"""The benchmarks cannot rot: every bench script runs at its smallest size (bench/run_all.py
--smallest), bench/pipeline.py scales every kind config.yaml holds, and bench/timesplit.py reads
a finished run's logs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))


def test_pipeline_bench_scales_the_size_keys_of_every_kind_in_config_yaml():
    import pipeline

    full = yaml.safe_load((REPO / "config.yaml").read_text())
    small = pipeline.scaled_config(0.01)  # raises if a kind has no SIZE_KEYS or a key is missing
    kinds = {e["kind"] for e in full["experiments"].values()}
    assert kinds <= set(pipeline.SIZE_KEYS) and len(kinds) == 6
    for name, e in small["experiments"].items():
        for dotted, floor in pipeline.SIZE_KEYS[e["kind"]].items():
            node = e
            for part in dotted.split("."):
                node = node[part]
            assert node == floor, (name, dotted, node)  # 1% of any size is below its floor
    same = pipeline.scaled_config(1.0)
    for name, e in full["experiments"].items():
        assert same["experiments"][name]["kind"] == e["kind"]
        if e["kind"] == "alignment_faking":
            assert same["experiments"][name]["queries"]["n_eval"] == e["queries"]["n_eval"]


def test_timesplit_refuses_a_folder_without_timing_lines(tmp_path):
    (tmp_path / "x.log").write_text("nothing here\n")
    proc = subprocess.run([sys.executable, str(REPO / "bench/timesplit.py"), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode != 0 and "no timing lines" in proc.stderr


@pytest.mark.slow
def test_every_benchmark_runs_at_its_smallest_size(tmp_path, model_dir):
    import os

    out = tmp_path / "latest.md"
    proc = subprocess.run(
        [sys.executable, "bench/run_all.py", "--smallest", "--markdown", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "ALIGNLAB_BENCH_MODEL_DIR": str(model_dir)},  # the session's copy of the model
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    table = out.read_text()
    for what in ("vLLM start-up", "sampling throughput", "AF arms base, sdf", "LoRA training",
                 "the DAG of tiny_bench.yaml", "diff: jobs' wall time", "diff: controls"):
        assert what in table, (what, table)
    assert "FAILED" not in table, table


def test_the_toy_unlock_rate_sweep_runs_at_its_smallest_size(tmp_path):
    import toy_unlock_lr

    exp = toy_unlock_lr.experiment(REPO / "config.yaml", "lock")
    exp["task"] = {**exp["task"], "n_eval": 6, "n_lock": 20}
    exp["toy"] = {**exp["toy"], "lock_steps": 3}
    exp["unlock"] = {**exp["unlock"], "strong_n": [1, 4], "strong_steps": 2, "weak_epochs": 1}
    rows = toy_unlock_lr.run(tmp_path, rates=(1e-3, 1e-4), exp=exp)
    assert [(r["rate"], r["arm"]) for r in rows] == [(None, "locked")] + [
        (rate, arm) for rate in (1e-3, 1e-4) for arm in ("strong_1", "strong_4", "weak_2")]
    assert toy_unlock_lr.pick(rows) in (1e-3, 1e-4, None)
    # the rule: the largest strong arm's accuracy first, then the weak pattern the strong arms keep
    made = [{"rate": None, "arm": "locked", "accuracy": 0.0, "weak_rate": 0.9},
            {"rate": 1e-3, "arm": "strong_4", "accuracy": 0.30, "weak_rate": 0.0},
            {"rate": 1e-4, "arm": "strong_4", "accuracy": 0.27, "weak_rate": 0.6},
            {"rate": 3e-5, "arm": "strong_4", "accuracy": 0.10, "weak_rate": 0.9}]
    assert toy_unlock_lr.pick(made) == 1e-4
    # ... and no rate at all when none lifts the largest strong arm 5 pp above the locked model
    assert toy_unlock_lr.pick([{**r, "accuracy": min(r["accuracy"], 0.04)} for r in made]) is None
