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


def test_the_model_and_fine_tunes_come_from_the_cache(tiny_run, second):
    workdir, proc, _ = second
    text = proc.stdout + proc.stderr
    # Each cached job's outputs (model: folder + index; fine-tune: adapter + train log).
    assert text.count("from cache") == 2 + 3 * 2, text[-3000:]
    # The jobs never ran here: no logs of theirs, while the first run has them.
    for log in ("logs/models/smollm2.log", *(f"logs/tiny/finetune_{a}.log" for a in ("sdf", "sdf_baseline", "positive_control"))):
        assert (tiny_run["workdir"] / log).is_file() and not (workdir / log).exists(), log
    assert (workdir / "logs/tiny/sample_sdf_1-of-2.log").is_file()
    adapter = workdir / "results/tiny/adapters/sdf"
    assert adapter.is_symlink() and (adapter / "adapter_model.safetensors").is_file()


def test_the_second_folder_takes_less_time_and_gets_the_same_results(tiny_run, second):
    workdir, _, seconds = second
    print(f"first run {tiny_run['seconds']:.0f} s, second (cached model and fine-tunes) {seconds:.0f} s")
    assert seconds < tiny_run["seconds"]
    assert assert_same_results(tiny_run["workdir"] / "results", workdir / "results") > 30
