"""Same config and seed, same artifacts: a second clean run of the tiny DAG (the part that does
not need the positive-control adapter, conftest.RERUN_TARGETS) writes tables with identical
content and metadata, and identical model and adapter weights; a sampling shard resampled with
the same seed is identical and another seed gives other samples for the same queries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import RERUN_MIN_TABLES
from workflow import assert_same_results

from alignlab import artifacts

pytestmark = pytest.mark.slow


def test_two_clean_runs_with_the_same_seed_are_identical(tiny_run, clean_rerun):
    # clean_rerun: no between-workflow cache, every job it runs recomputed (on SLURM where it can be)
    rerun = clean_rerun["workdir"] / "results"
    n = assert_same_results(tiny_run["workdir"] / "results", rerun, subset=True)
    assert n >= RERUN_MIN_TABLES, n
    assert len(list(rerun.glob("tiny/adapters/*/adapter_model.safetensors"))) == 2
    assert (rerun / "models/smollm2/hf/model.safetensors").is_file()


def resample_first_shard(workdir, config, seed: int, out) -> None:
    """The sampling step of the run's first shard (every arm, adapters as LoRA requests, as in
    the run), called in a fresh process (a vLLM engine leaves process-wide state behind, so the
    test process keeps only its own) in the run's folder, on the run's queries and adapters."""
    code = """
import json, sys, yaml
from alignlab.kinds.alignment_faking import arms as af_arms
from alignlab.kinds.alignment_faking import steps as alignment_faking
from alignlab.config import as_dict, load
a = json.loads(sys.argv[1])
cfg = load(yaml.safe_load(open(a["config"])))
e = cfg.experiments["tiny"]
arms = af_arms.sample_arms("tiny", e)  # every arm replicate, with its adapter
alignment_faking.sample(
    arms=arms, queries_path="results/tiny/queries.parquet", model_dir="results/models/smollm2/hf",
    model_name=e.model, persona=e.persona, sampling=as_dict(e.sampling), engine_cfg=as_dict(cfg.engine),
    seed=a["seed"], experiment="tiny", out=a["out"], shard="1-of-2",
)
"""
    args = {"config": str(config), "seed": seed, "out": str(out)}
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)], cwd=workdir, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.parametrize("seed,same", [(7, True), (8, False)])
def test_the_seed_decides_the_samples(tiny_run, tmp_path, seed, same):
    """The first shard resampled from the run's queries, model and adapters: with the config's
    seed (7) it is identical to the run's, with another seed it is not."""
    workdir = tiny_run["workdir"]
    out = tmp_path / "1-of-2.parquet"
    resample_first_shard(workdir, tiny_run["config"], seed, out)
    ours = artifacts.read_table(out)
    reference = artifacts.read_table(workdir / "results/tiny/shards/samples/1-of-2.parquet")
    assert ours.select("arm", "query_id", "tier").equals(reference.select("arm", "query_id", "tier"))
    if same:
        assert ours.equals(reference)
    else:
        differ = (ours["response"] != reference["response"]).mean()
        assert differ > 0.8, differ
        assert not set(ours["seed"]) & set(reference["seed"])
