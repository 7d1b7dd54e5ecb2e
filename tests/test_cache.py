"""Snakemake's between-workflow cache: a second working folder sharing SNAKEMAKE_OUTPUT_CACHE
with the tiny run takes its model and fine-tunes from the cache instead of recomputing them,
and they equal the first run's. The second folder asks only for the cached steps' outputs (and
so the data steps they need): sampling and judging are what the other end-to-end tests check."""

from __future__ import annotations

import time

import pytest

from alignlab import timings
from workflow import adapter_hashes, copy_workflow, snakemake, tables

pytestmark = pytest.mark.slow

FINE_TUNED = ("sdf", "sdf_baseline", "positive_control")
MODEL_INDEX = "results/models/smollm2/model.parquet"
TARGETS = (MODEL_INDEX, *(f"results/tiny/adapters/{arm}.train_log.parquet" for arm in FINE_TUNED))
LOGS = ("logs/models/smollm2.log", *(f"logs/tiny/finetune_{a}.log" for a in FINE_TUNED))


@pytest.fixture(scope="module")
def second(tiny_run, output_cache, tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("second-workdir"))
    start = time.perf_counter()
    proc = snakemake(
        workdir, *TARGETS, "--configfile", "tiny.yaml", "--cache",
        env={"SNAKEMAKE_OUTPUT_CACHE": str(output_cache)},
    )
    return workdir, proc, time.perf_counter() - start


def test_the_model_and_fine_tunes_come_from_the_cache(tiny_run, second, output_cache):
    workdir, proc, _ = second
    text = proc.stdout + proc.stderr
    for path in TARGETS:
        assert f"Symlinking output file {path} from cache" in text, (path, text[-3000:])
    # The jobs never ran here: their logs are missing or empty (Snakemake may create them), while
    # the first run's name the step that wrote them.
    for log in LOGS:
        assert "alignlab: step" in (tiny_run["workdir"] / log).read_text(), log
        assert not (workdir / log).exists() or (workdir / log).stat().st_size == 0, log
    # The data steps the fine-tunes need did run here.
    assert "alignlab: step" in (workdir / "logs/tiny/documents_setting.log").read_text()
    weights = workdir / "results/tiny/adapters/sdf/adapter_model.safetensors"
    assert weights.resolve().is_relative_to(output_cache.resolve())


def test_the_second_folder_takes_less_time_and_gets_the_same_outputs(tiny_run, second):
    workdir, _, seconds = second
    # What the cached jobs took in the first run (their own wall times, from their logs).
    first = sum(r.seconds for log in LOGS for r in timings.parse_log((tiny_run["workdir"] / log).read_text())
                if r.stage == timings.JOB)
    print(f"cached jobs in the first run {first:.0f} s; the second folder, those targets, {seconds:.0f} s")
    assert seconds < first
    ours, theirs = tables(workdir / "results"), tables(tiny_run["workdir"] / "results")
    for rel in (p.removeprefix("results/") for p in TARGETS):
        assert ours[rel][0].equals(theirs[rel][0]) and ours[rel][1] == theirs[rel][1], rel
    hashes = adapter_hashes(workdir / "results/tiny")
    first = adapter_hashes(tiny_run["workdir"] / "results/tiny")  # also holds the second replicates
    assert len(hashes) == len(FINE_TUNED) and hashes == {path: first[path] for path in hashes}
