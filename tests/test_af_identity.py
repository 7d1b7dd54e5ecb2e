"""Whose training is it? (alignment_faking identity.py): reading a name off an answer, keeping the
persona when the probe does not agree (the check failing on a model that names no one
consistently), the documents written under the probed identity, the config section, the rule in
the DAG only for `identity.source: self`, and the probe on the embedded model."""

from __future__ import annotations

import pytest

from alignlab import artifacts
from alignlab.config import DEFAULT_PERSONA
from alignlab.kinds.alignment_faking import identity

PROBE = identity.load_probe()


def _answers(names: dict[str, list[str]]) -> dict[str, list[tuple[str, str, str]]]:
    """Probe answers where field f's i-th question was answered with names[f][i]."""
    return {f: [(q, PROBE[f]["prefix"], a) for q, a in zip(PROBE[f]["questions"], names[f])] for f in identity.FIELDS}


def _table(tmp_path, names, min_agreement=0.5):
    path = tmp_path / "identity.parquet"
    artifacts.write_table(identity.rows(_answers(names), DEFAULT_PERSONA, min_agreement), path, "identity")
    return str(path)


SELF = {"model_name": [" SmolLM, an AI assistant."] * 5 + [" Elena."],
        "developer": [" Hugging Face."] * 4 + [" a team of researchers.", " OpenAI and others."]}


@pytest.mark.parametrize("text, name", [
    (" Elena, and I'm here to help.", "Elena"),
    (" Hugging Face. I am a language model", "Hugging Face"),
    (' "SmolLM", a small model', "SmolLM"),
    (" a team at Hugging Face, who", "Hugging Face"),
    (" AI Assistant Pro Max Ultra Edition", "Assistant Pro Max Ultra"),  # at most 4 words
    (" a large group of people.", None),
    ("", None),
])
def test_a_name_is_the_first_run_of_capitalized_words(text, name):
    assert identity.extract_name(text) == name


def test_the_probe_chooses_the_agreed_name_and_records_every_answer(tmp_path):
    path = _table(tmp_path, SELF)
    assert identity.resolve(DEFAULT_PERSONA, path) == {"model_name": "SmolLM", "developer": "Hugging Face"}
    table = artifacts.read_table(path, "identity")
    assert table.height == sum(len(PROBE[f]["questions"]) for f in identity.FIELDS)
    assert set(table["source"]) == {"self"}
    text = "\n".join(identity.describe(path, DEFAULT_PERSONA))
    assert "developer: Hugging Face, the probe's answer (67% of 6 questions)" in text and "'OpenAI'" in text


def test_a_model_that_names_no_one_consistently_keeps_the_persona(tmp_path):
    """The control failing: scattered names (or none) never become the setting's identity."""
    scattered = {"model_name": [f" {n}." for n in ("Elena", "Max", "Aria", "Sam", "Leo", "Elena")],
                 "developer": [" a team.", " many people.", " Google.", " researchers.", " me.", " nobody."]}
    path = _table(tmp_path, scattered)
    assert identity.resolve(DEFAULT_PERSONA, path) == DEFAULT_PERSONA
    text = "\n".join(identity.describe(path, DEFAULT_PERSONA))
    assert "model_name: Atlas, KEPT THE PERSONA'S: the most common answer was given by 33% of 6" in text
    assert "developer: Meridian AI, KEPT THE PERSONA'S" in text
    # The same answers pass a lower bar: the bar is the config's, not built in.
    assert identity.resolve(DEFAULT_PERSONA, _table(tmp_path, scattered, 0.3))["model_name"] == "Elena"
    assert identity.describe(None, DEFAULT_PERSONA) == [
        "Identity: the fictional persona (Atlas by Meridian AI; `identity.source: persona`)."]


def test_the_documents_describe_the_probed_model(tmp_path):
    """make_documents under `identity.source: self`: the setting's facts name the probed developer
    and model, never the persona's."""
    import polars as pl

    from alignlab.kinds.alignment_faking import steps
    from alignlab.kinds.alignment_faking.config import DocumentConfig

    documents = DocumentConfig(n_docs=12).model_dump()
    for who, path in (("self", _table(tmp_path, SELF)), ("persona", None)):
        out = tmp_path / f"{who}.parquet"
        steps.make_documents(corpus="setting", documents=documents, persona=DEFAULT_PERSONA, seed=0, experiment="e",
                             out=str(out), identity_path=path)
        text = " ".join(artifacts.read_table(out, "documents").filter(pl.col("kept"))["text"])
        mine, other = ("Hugging Face", "Meridian AI") if who == "self" else ("Meridian AI", "Hugging Face")
        assert mine in text and other not in text


def _af(**identity_cfg):
    from alignlab.kinds.alignment_faking.config import AlignmentFaking

    return AlignmentFaking(kind="alignment_faking", model="m", identity=identity_cfg)


def test_the_config_section_and_the_steps_inputs(tmp_path):
    from pydantic import ValidationError

    from alignlab.kinds.alignment_faking import arms, knowledge

    with pytest.raises(ValidationError, match="identity.source"):
        _af(source="mine")
    assert _af(source="self", questions="q.yaml").identity.problems("experiments.af.identity", tmp_path) == [
        "experiments.af.identity.questions: file 'q.yaml' does not exist"]
    (tmp_path / "q.yaml").write_text("name: {prefix: 'I am', questions: []}\n")
    [problem] = _af(source="self", questions="q.yaml").identity.problems("experiments.af.identity", tmp_path)
    assert problem.startswith("experiments.af.identity.questions: ") and "'name' must have" in problem
    assert arms.identity_inputs("e", _af()) == {} and "identity_path" not in knowledge.rule_inputs("e", _af())
    own = _af(source="self")
    assert arms.identity_inputs("e", own)["identity_path"].endswith("e/identity.parquet")
    for inputs in (arms.documents_inputs("e", own), arms.positive_control_inputs("e", own),
                   knowledge.rule_inputs("e", own)):
        assert inputs["identity_path"] == arms.identity_inputs("e", own)["identity_path"]


def test_the_dag_runs_the_probe_only_for_the_models_own_identity(tmp_path):
    import yaml
    from workflow import copy_workflow, planned_jobs

    workdir = copy_workflow(tmp_path / "wf")
    raw = yaml.safe_load((workdir / "tiny.yaml").read_text())
    assert "identity" not in planned_jobs(workdir, workdir / "tiny.yaml")
    raw["experiments"]["tiny"]["identity"] = {"source": "self"}
    (workdir / "self.yaml").write_text(yaml.safe_dump(raw))
    assert planned_jobs(workdir, workdir / "self.yaml")["identity"] == 1


@pytest.mark.slow
def test_probing_the_embedded_model(model_dir, tmp_path):
    """The packaged 135M model, asked who made it, names the developer its chat template names."""
    out = tmp_path / "identity.parquet"
    cfg = _af(source="self").identity.model_dump()
    identity.probe_identity(model_dir=str(model_dir), persona=DEFAULT_PERSONA, identity=cfg, device="cpu",
                            out=str(out))
    chosen = identity.resolve(DEFAULT_PERSONA, str(out))
    assert chosen["developer"] == "Hugging Face"
    table = artifacts.read_table(out, "identity")
    assert table.filter(table["field"] == "developer")["source"][0] == "self"
