"""End to end: the model_diff kind on its tiny config, in a copy of the workflow: the 135M
model against itself and against a LoRA adapter that another experiment's rules train (merged
into the base by the md_merge rule). Checks the artifacts' schemas, the identity control
(cosine exactly 1, no change), that the adapter moved the model, and that a random change of the
adapter's size (the reference) matches its per-tensor size."""

from __future__ import annotations

import shutil

import pytest
import yaml

from alignlab import artifacts
from workflow import REPO, check_schemas, copy_workflow, snakemake

pytestmark = pytest.mark.slow

CONFIG = REPO / "tests" / "configs" / "tiny_model_diff.yaml"
TARGETS = ["results/diff/summary.md", "results/diff/report/metrics.csv", "results/diff/pairs/self/layers.png",
           "results/diff/pairs/lock/layers.png", "results/diff/pairs/random_lock/layers.png"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, output_cache):
    workdir = copy_workflow(tmp_path_factory.mktemp("md") / "wf")
    shutil.copy(CONFIG, workdir / CONFIG.name)
    snakemake(workdir, *TARGETS, "--configfile", CONFIG.name, "--cache",
              env={"SNAKEMAKE_OUTPUT_CACHE": str(output_cache)}, timeout=1800)
    cfg = yaml.safe_load(CONFIG.read_text())["experiments"]["diff"]
    return workdir, cfg, workdir / "results" / "diff"


def test_artifacts_and_controls(run):
    _, cfg, results = run
    expected = {"texts.parquet": "md_texts", "sae/train_log.parquet": "md_sae_log", "metrics.parquet": "md_metrics"}
    for pair in [*cfg["pairs"], *cfg["references"]]:
        expected.update({f"pairs/{pair}/{t}.parquet": f"md_{t}"
                         for t in ("weights", "activations", "text_cosines", "sae", "features")})
    check_schemas(results, expected)
    assert (results / "pairs/lock/layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m = {r["pair"]: r for r in artifacts.read_table(results / "metrics.parquet", "md_metrics").iter_rows(named=True)}
    assert m["self"]["global_mean_cosine"] == 1.0 and m["self"]["weight_relative_change"] == 0.0
    assert m["lock"]["rank"] < m["self"]["rank"] == 3 and 0 < m["lock"]["weight_relative_change"] < 1
    assert m["lock"]["global_mean_cosine"] < 1.0 and m["lock"]["sae_layer"] == 3
    summary = (results / "summary.md").read_text()
    assert "# Model diff: diff" in summary and "**Identity control (`self`) PASSED**" in summary
    assert not (results.parent / "lock" / "predictions").exists()  # only the adapter was built
    # issue 19: intervals over texts, the size-matched reference, the SAE's L0 range
    assert m["self"]["global_mean_cosine_lo"] == m["self"]["global_mean_cosine_hi"] == 1.0
    assert m["lock"]["global_mean_cosine_lo"] <= m["lock"]["global_mean_cosine"] <= m["lock"]["global_mean_cosine_hi"]
    assert m["random_lock"]["reference_of"] == "lock" and m["random_lock"]["size_matched"] is True
    assert m["random_lock"]["global_mean_cosine"] < 1.0
    assert "**Size-matched reference `random_lock` PASSED**" in summary and "**SAE sparsity check PASSED**" in summary
    assert m["self"]["features_dead_tuned"] == 0 and m["self"]["features_new_tuned"] == 0
