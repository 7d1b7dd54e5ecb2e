"""Running the real workflow from tests: a fresh copy of it in a temporary folder, Snakemake as
a subprocess, the jobs a dry run plans, and comparing every table two runs wrote."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

# Shared modules that declare their own tables (the index of Inspect logs): imported here so a run
# test that checks every artifact's schema finds them whatever ran before it in the session.
import alignlab.inspect_logs  # noqa: F401, E402

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "src", "report", "profiles", "envs", "config.yaml")
TINY = REPO / "tests" / "configs" / "tiny.yaml"
# Wall-clock columns: the only table content that may differ between two identical runs.
TIMING_COLUMNS = ("seconds", "tokens_per_second")


def copy_workflow(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore)
        else:
            shutil.copy(src, dest / part)
    shutil.copy(TINY, dest / "tiny.yaml")
    return dest


def snakemake(
    workdir: Path, *args: str, profile: str = "profiles/test", env: dict | None = None,
    check: bool = True, timeout: float = 3600,
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*SNAKEMAKE, "--profile", profile, *args], cwd=workdir, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def planned_jobs(workdir: Path, configfile: Path, *targets: str) -> dict[str, int]:
    """Jobs a dry run would execute, by rule (empty when there is nothing to do)."""
    # Targets first: --configfile takes every argument after it.
    proc = snakemake(workdir, *targets, "-n", "--configfile", str(configfile))
    return count_jobs(proc.stdout + proc.stderr)


def count_jobs(text: str) -> dict[str, int]:
    jobs: dict[str, int] = {}
    for rule in re.findall(r"^(?:local)?rule (\w+):$", text, re.M):
        jobs[rule] = jobs.get(rule, 0) + 1
    return jobs


def tables(results: Path) -> dict[str, tuple[pl.DataFrame, dict]]:
    """Every Parquet table under `results`, by relative path: content (minus wall-clock
    columns) and metadata."""
    out = {}
    for path in sorted(results.rglob("*.parquet")):
        table = pq.read_table(path)
        frame = pl.from_arrow(table).drop([c for c in TIMING_COLUMNS if c in table.column_names])
        out[str(path.relative_to(results))] = (frame, table.schema.metadata)
    return out


def adapter_hashes(results: Path) -> dict[str, str]:
    """sha256 of every adapter's weights, by path; follows the symlinks into Snakemake's cache."""
    return weight_hashes(results, "adapter_model.safetensors")


def weight_hashes(results: Path, name: str) -> dict[str, str]:
    """sha256 of every file called `name` under `results`, by path (following symlinks)."""
    found = {}
    for folder, _, files in os.walk(results, followlinks=True):
        if name in files:
            path = Path(folder) / name
            found[str(path.relative_to(results))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(found.items()))


def assert_same_results(a: Path, b: Path, subset: bool = False) -> int:
    """Both runs wrote the same tables with equal content and metadata, the same adapter
    weights and the same materialized model weights. With `subset`, run `b` ran part of the
    DAG: every table and weight file it wrote equals run `a`'s. Returns how many tables were
    compared."""
    ta, tb = tables(a), tables(b)
    if subset:
        assert set(tb) <= set(ta), f"tables the first run did not write: {sorted(set(tb) - set(ta))}"
        ta = {rel: ta[rel] for rel in tb}
    assert sorted(ta) == sorted(tb), f"different tables: {sorted(set(ta) ^ set(tb))}"
    for rel, (frame, meta) in ta.items():
        other, other_meta = tb[rel]
        assert frame.equals(other), f"{rel}: content differs"
        assert meta == other_meta, f"{rel}: metadata differs"
    for name in ("adapter_model.safetensors", "model.safetensors"):
        wa, wb = weight_hashes(a, name), weight_hashes(b, name)
        if subset:
            wa = {rel: wa.get(rel) for rel in wb}
        assert wa == wb, f"{name} weights differ: {sorted(k for k in wa if wa[k] != wb.get(k))}"
    return len(ta)


def run_config(parent: Path, config: Path, experiment: str, cache: Path, timeout: float = 2400):
    """A fresh copy of the workflow run on `config` (sharing the between-workflow `cache`, so a
    model another test materialized is reused). Returns the working folder, the experiment's
    config section and its results folder."""
    import yaml

    workdir = copy_workflow(parent / "wf")
    shutil.copy(config, workdir / config.name)
    snakemake(workdir, "--configfile", config.name, "--cache", env={"SNAKEMAKE_OUTPUT_CACHE": str(cache)},
              timeout=timeout)
    cfg = yaml.safe_load(config.read_text())["experiments"][experiment]
    return workdir, cfg, workdir / "results" / experiment


def check_schemas(results: Path, expected: dict[str, str]) -> None:
    """Every table in `expected` (path under `results` -> schema name) has its declared schema
    and the metadata every step writes."""
    from alignlab import artifacts

    for rel, schema in expected.items():
        artifacts.check_schema(results / rel, schema)
        assert len(artifacts.read_metadata(results / rel)["params_sha256"]) == 64, rel

