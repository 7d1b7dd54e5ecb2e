"""A killed job leaves nothing that looks finished, and the next run completes.

Two real kills on the tiny config: a fine-tuning job killed with the Snakemake that ran it
(a lost node: SIGKILL to the whole process group, so Snakemake cannot clean up either), and a
sampling job killed alone (what a scheduler's OOM killer or preemption does). The sampling job's
other inputs come from the tiny run through the between-workflow cache.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from workflow import SNAKEMAKE, adapter_hashes, copy_workflow, planned_jobs, snakemake, tables

pytestmark = pytest.mark.slow


def start(workdir: Path, target: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    out = open(workdir / "killed-run.txt", "w")
    return subprocess.Popen(
        [*SNAKEMAKE, "--profile", "profiles/test", target, *args, "--configfile", "tiny.yaml"],
        cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})},
    )


def wait_for(log: Path, marker: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    """Until the job's log shows `marker` (the job is mid-way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before '{marker}' appeared in {log}")
        if log.is_file() and marker in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"'{marker}' did not appear in {log} within {timeout} s")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("killed"))


def test_a_killed_fine_tune_and_its_snakemake_leave_no_finished_output(workdir):
    target = "results/tiny/adapters/sdf_baseline"  # relative: Snakemake matches rule patterns
    adapter = workdir / target
    # No --cache here, not even for the model: Snakemake's --cache takes every rule marked
    # cacheable whatever rule names follow it, so the fine-tune would come from the cache.
    proc = start(workdir, target)
    wait_for(workdir / "logs/tiny/finetune_sdf_baseline.log", "lora:", proc)

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert not adapter.exists() and not Path(f"{adapter}.train_log.parquet").exists()
    # Snakemake, killed too, left its lock; a user clears it and reruns.
    snakemake(workdir, "--unlock", "--configfile", "tiny.yaml")
    assert planned_jobs(workdir, workdir / "tiny.yaml", target) == {"finetune": 1}
    snakemake(workdir, target, "--configfile", "tiny.yaml")
    assert (adapter / "adapter_model.safetensors").is_file()
    assert not list(adapter.parent.glob(".*.tmp")), "the killed job's temporary folder was left"


def test_a_killed_sampling_job_leaves_no_finished_output(workdir, tiny_run, output_cache):
    # The shard needs every adapter: the four not trained here (two are the second replicates of
    # sdf and sdf_baseline) come from the tiny run through the between-workflow cache
    # (sdf_baseline, trained by the test above, is not refetched).
    cache = ("--cache",)
    env = {"SNAKEMAKE_OUTPUT_CACHE": str(output_cache)}
    target = "results/tiny/shards/samples/1-of-2.parquet"
    shard = workdir / target
    proc = start(workdir, target, *cache, env=env)
    wait_for(workdir / "logs/tiny/sample_1-of-2.log", "Processed prompts", proc)
    job_processes = psutil.Process(proc.pid).children(recursive=True)
    assert job_processes, "no job process to kill"
    for p in job_processes:
        p.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=300) != 0  # Snakemake saw the job fail

    assert not shard.exists()
    assert planned_jobs(workdir, workdir / "tiny.yaml", target) == {"sample": 1}
    snakemake(workdir, target, *cache, "--configfile", "tiny.yaml", env=env)
    # arm replicates (base, prompted, sdf x2, sdf_baseline x2, positive_control, sdf_cot x2) x queries x tiers
    assert tables(shard.parent)["1-of-2.parquet"][0].height == 9 * 6 * 2


def test_recovered_outputs_equal_those_of_an_uninterrupted_run(workdir, tiny_run):
    reference = tiny_run["workdir"] / "results/tiny"
    ours = workdir / "results/tiny"
    # The killed fine-tune (sdf_baseline) and the adapters the sampling shard needed.
    assert adapter_hashes(ours / "adapters") == adapter_hashes(reference / "adapters")
    shard = "shards/samples/1-of-2.parquet"
    assert tables(ours)[shard][0].equals(tables(reference)[shard][0])
