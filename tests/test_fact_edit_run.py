"""End to end: the fact_edit kind on its tiny config (the 135M model), in a copy of the workflow:
facts filtered on the base, one job per penalty setting, the aggregate. Checks the artifacts'
schemas, that only the configured layers were reported, and the penalty check's verdict."""

from __future__ import annotations

import pytest

from alignlab import artifacts
from workflow import REPO, check_schemas, run_config

pytestmark = pytest.mark.slow

CONFIG = REPO / "tests" / "configs" / "tiny_fact_edit.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory, output_cache):
    return run_config(tmp_path_factory.mktemp("fe"), CONFIG, "facts", output_cache, timeout=1800)


def test_artifacts_and_penalty_check(run):
    _, cfg, results = run
    expected = {"facts.parquet": "fe_facts", "metrics.parquet": "fe_metrics"}
    for s in cfg["penalties"]:
        expected.update({f"settings/{s}/{t}.parquet": f"fe_{t}" for t in ("runs", "layers", "overlap")})
    check_schemas(results, expected)
    assert (results / "layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    layers = artifacts.read_table(results / "settings/none/layers.parquet", "fe_layers")
    assert set(layers["layer"].to_list()) == set(cfg["edit"]["layers"])
    m = {r["setting"]: r for r in artifacts.read_table(results / "metrics.parquet", "fe_metrics").iter_rows(named=True)}
    assert m["none"]["weight_change"] > m["l2_large"]["weight_change"] > 0
    assert "**Penalty check PASSED**" in (results / "summary.md").read_text()
