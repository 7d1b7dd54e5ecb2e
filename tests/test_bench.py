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
