"""Snakemake's between-workflow cache: a second working folder sharing SNAKEMAKE_OUTPUT_CACHE
with the tiny run takes its model and fine-tunes from the cache instead of recomputing them,
and ends with the same results."""

from __future__ import annotations

import time

import pytest

from workflow import assert_same_results, copy_workflow, snakemake

pytestmark = pytest.mark.slow

CACHED = ("materialize_model", "finetune")


@pytest.fixture(scope="module")
def second(tiny_run, output_cache, tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("second-workdir"))
    start = time.perf_counter()
    proc = snakemake(
        workdir, "--configfile", "tiny.yaml", "--cache",
        env={"SNAKEMAKE_OUTPUT_CACHE": str(output_cache)},
    )
    return workdir, proc, time.perf_counter() - start


def test_the_model_and_fine_tunes_come_from_the_cache(tiny_run, second, output_cache):
    workdir, proc, _ = second
    text = proc.stdout + proc.stderr
    fetched = ["results/models/smollm2/model.parquet"] + [
        f"results/tiny/adapters/{arm}.train_log.parquet" for arm in ("sdf", "sdf_baseline", "positive_control")
    ]
    for path in fetched:
        assert f"Symlinking output file {path} from cache" in text, (path, text[-3000:])
    # The jobs never ran here: their logs are missing or empty (Snakemake may create them), while
    # the first run's name the step that wrote them.
    for log in ("logs/models/smollm2.log", *(f"logs/tiny/finetune_{a}.log" for a in ("sdf", "sdf_baseline", "positive_control"))):
        assert "alignlab: step" in (tiny_run["workdir"] / log).read_text(), log
        assert not (workdir / log).exists() or (workdir / log).stat().st_size == 0, log
    assert "alignlab: step" in (workdir / "logs/tiny/sample_1-of-2.log").read_text()
    weights = workdir / "results/tiny/adapters/sdf/adapter_model.safetensors"
    assert weights.resolve().is_relative_to(output_cache.resolve())


def test_the_second_folder_takes_less_time_and_gets_the_same_results(tiny_run, second):
    workdir, _, seconds = second
    print(f"first run {tiny_run['seconds']:.0f} s, second (cached model and fine-tunes) {seconds:.0f} s")
    assert seconds < tiny_run["seconds"]
    assert assert_same_results(tiny_run["workdir"] / "results", workdir / "results") > 30
