"""Same config and seed, same artifacts: a second clean run of the tiny config writes tables
with identical content and metadata, and identical adapter weights; another seed gives other
samples for the same queries."""

from __future__ import annotations

import pytest

from alignlab import alignment_faking, artifacts
from alignlab.config import as_dict, load
from workflow import assert_same_results, copy_workflow, snakemake

pytestmark = pytest.mark.slow


def test_two_clean_runs_with_the_same_seed_are_identical(tiny_run, tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("clean-rerun"))
    snakemake(workdir, "--configfile", "tiny.yaml")  # no cache: everything recomputed
    n = assert_same_results(tiny_run["workdir"] / "results", workdir / "results")
    assert n > 30


@pytest.mark.parametrize("seed,same", [(7, True), (8, False)])
def test_the_seed_decides_the_samples(tiny_run, tmp_path, seed, same):
    """The base arm's first shard, resampled by the step function on the first run's queries
    and model: with the config's seed (7) it is identical, with another seed it is not."""
    results = tiny_run["workdir"] / "results"
    cfg = load(__import__("yaml").safe_load(tiny_run["config"].read_text()))
    e = cfg.experiments["tiny"]
    out = tmp_path / "base.parquet"
    alignment_faking.sample(
        arm="base", scratchpad=False, queries_path=str(results / "tiny/queries.parquet"),
        model_dir=str(results / "models/smollm2/hf"), adapter_dir=None, model_name=e.model,
        persona=e.persona, sampling=as_dict(e.sampling), engine_cfg=as_dict(cfg.engine), seed=seed,
        experiment="tiny", out=str(out), shard="1-of-2",
    )
    ours = artifacts.read_table(out)
    reference = artifacts.read_table(results / "tiny/shards/samples/base/1-of-2.parquet")
    assert ours.select("query_id", "tier").equals(reference.select("query_id", "tier"))
    if same:
        assert ours.equals(reference)
    else:
        differ = (ours["response"] != reference["response"]).mean()
        assert differ > 0.8, differ
        assert not set(ours["seed"]) & set(reference["seed"])
