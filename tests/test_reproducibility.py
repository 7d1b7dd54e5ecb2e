"""Same config and seed, same artifacts: a second clean run of the tiny config writes tables
with identical content and metadata, and identical adapter weights; another seed gives other
samples for the same queries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from alignlab import artifacts
from workflow import assert_same_results, copy_workflow, snakemake

pytestmark = pytest.mark.slow


def test_two_clean_runs_with_the_same_seed_are_identical(tiny_run, tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("clean-rerun"))
    snakemake(workdir, "--configfile", "tiny.yaml")  # no cache: everything recomputed
    n = assert_same_results(tiny_run["workdir"] / "results", workdir / "results")
    assert n > 30


def sample_base_shard(results, config, seed: int, out) -> None:
    """The base arm's first shard, sampled by the step function in a fresh process (a vLLM
    engine leaves process-wide state behind, so the test process keeps only its own)."""
    code = """
import json, sys, yaml
from alignlab import alignment_faking
from alignlab.config import as_dict, load
a = json.loads(sys.argv[1])
cfg = load(yaml.safe_load(open(a["config"])))
e = cfg.experiments["tiny"]
alignment_faking.sample(
    arm="base", scratchpad=False, queries_path=a["queries"], model_dir=a["model"], adapter_dir=None,
    model_name=e.model, persona=e.persona, sampling=as_dict(e.sampling), engine_cfg=as_dict(cfg.engine),
    seed=a["seed"], experiment="tiny", out=a["out"], shard="1-of-2",
)
"""
    args = {
        "config": str(config), "queries": str(results / "tiny/queries.parquet"),
        "model": str(results / "models/smollm2/hf"), "seed": seed, "out": str(out),
    }
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.parametrize("seed,same", [(7, True), (8, False)])
def test_the_seed_decides_the_samples(tiny_run, tmp_path, seed, same):
    """Resampled on the first run's queries and model: with the config's seed (7) the shard is
    identical, with another seed it is not."""
    results = tiny_run["workdir"] / "results"
    out = tmp_path / "base.parquet"
    sample_base_shard(results, tiny_run["config"], seed, out)
    ours = artifacts.read_table(out)
    reference = artifacts.read_table(results / "tiny/shards/samples/base/1-of-2.parquet")
    assert ours.select("query_id", "tier").equals(reference.select("query_id", "tier"))
    if same:
        assert ours.equals(reference)
    else:
        differ = (ours["response"] != reference["response"]).mean()
        assert differ > 0.8, differ
        assert not set(ours["seed"]) & set(reference["seed"])
