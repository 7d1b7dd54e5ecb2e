"""A kind added without touching a shared module: tests/example_kind registers itself through a
config's `kind_modules`, and Snakemake runs its rule through the shared step script."""

from __future__ import annotations

import os
import shutil
import sys

import pytest
import yaml
from workflow import REPO, copy_workflow, snakemake

from alignlab import artifacts, config, kinds

TEXTS = ["The quick brown fox.", "Jumps over the lazy dog, twice."]


def _config(texts=TEXTS) -> dict:
    raw = yaml.safe_load((REPO / "tests/configs/tiny.yaml").read_text())
    return {
        "seed": 1, "kind_modules": ["example_kind"], "models": raw["models"],
        "experiments": {"count": {"kind": "token_count", "model": "smollm2", "texts": texts}},
    }


@pytest.fixture
def on_path(monkeypatch):
    """example_kind importable, and registered only for this test (the registry, the schemas
    and the imported module are restored after it, so other tests see the built-in kinds)."""
    monkeypatch.syspath_prepend(str(REPO / "tests"))
    monkeypatch.setattr(kinds, "_KINDS", dict(kinds.load()))
    monkeypatch.setattr(artifacts, "SCHEMAS", type(artifacts.SCHEMAS)(artifacts.SCHEMAS))
    monkeypatch.setattr(artifacts, "ROW_CHECKS", dict(artifacts.ROW_CHECKS))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] == "example_kind"]:
        del sys.modules[name]


def test_the_kind_validates_and_its_check_can_fail(on_path):
    cfg = config.load(_config(), REPO)
    assert type(cfg.experiments["count"]).__name__ == "TokenCount"
    with pytest.raises(config.ConfigError, match=r"experiments\.count\.texts: needs at least one non-empty text"):
        config.load(_config(texts=[" "]), REPO)
    with pytest.raises(config.ConfigError, match=r"kind_modules: cannot import 'no_such_kind'"):
        config.load({**_config(), "kind_modules": ["no_such_kind"]}, REPO)


@pytest.mark.slow
def test_snakemake_runs_the_example_kind(on_path, tmp_path, output_cache, model_dir):
    workdir = copy_workflow(tmp_path / "wf")
    shutil.copytree(REPO / "tests/example_kind", workdir / "example_kind")
    (workdir / "count.yaml").write_text(yaml.safe_dump(_config()))
    env = {"PYTHONPATH": os.pathsep.join([str(workdir), os.environ.get("PYTHONPATH", "")]),
           "SNAKEMAKE_OUTPUT_CACHE": str(output_cache)}
    snakemake(workdir, "--configfile", "count.yaml", "--cache", env=env)
    kinds.load(["example_kind"])  # its table schema, for reading here
    counts = artifacts.read_table(workdir / "results/count/counts.parquet", "token_counts")
    from alignlab.finetune import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    assert counts["n_tokens"].to_list() == [len(tokenizer(t)["input_ids"]) for t in TEXTS]
    assert "tokens in 2 texts" in (workdir / "results/count/summary.md").read_text()


def test_a_second_kind_of_the_same_name_or_table_is_refused(on_path):
    import dataclasses

    from alignlab.kinds import KindError

    known = kinds.load()["fact_edit"]
    with pytest.raises(KindError, match="two kinds are called 'fact_edit'"):
        kinds.register(dataclasses.replace(known, report_tables=("other",)))
    with pytest.raises(ValueError, match=r"kind 'copycat': table schemas \['fe_facts', 'fe_layers', 'fe_metrics', 'fe_overlap', 'fe_probes', 'fe_runs'\] are already declared"):
        kinds.register(dataclasses.replace(known, name="copycat"))
