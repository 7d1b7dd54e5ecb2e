"""The generic rule runner (scripts/step.py -> steps.main): the function a rule names, called
with the rule's named inputs, outputs and params; a name that does not match fails first."""

from __future__ import annotations

import types

import pytest

from alignlab import steps


def _job(**params):
    return types.SimpleNamespace(
        rule="r", input=types.SimpleNamespace(path="in.parquet", code=["src/x.py"]),
        output=types.SimpleNamespace(out="out.csv"), params=types.SimpleNamespace(**params), config={"seed": 3},
    )


def test_a_rule_names_the_function_and_passes_its_arguments_by_name():
    job = _job(step="artifacts.to_csv")
    step = steps.resolve(job.params.step)
    assert step.__module__ == "alignlab.artifacts" and step.__name__ == "to_csv"
    assert steps.arguments(job, step) == {"path": "in.parquet", "out": "out.csv"}  # not code, not step


def test_the_workflow_config_reaches_a_config_argument():
    def build(*, path, out, config=None):
        pass

    assert steps.arguments(_job(step="x"), build)["config"] == {"seed": 3}


def test_names_that_do_not_match_fail_before_the_step_runs():
    step = steps.resolve("artifacts.to_csv")
    with pytest.raises(TypeError, match=r"rule 'r' runs alignlab.artifacts.to_csv, which takes no argument \['colour'\]"):
        steps.arguments(_job(step="artifacts.to_csv", colour="red"), step)

    def needs_more(*, path, out, seed):
        pass

    with pytest.raises(TypeError, match=r"which needs \['seed'\]: name them as the rule's input, output or params"):
        steps.arguments(_job(step="x"), needs_more)
    with pytest.raises(LookupError, match="params.step names 'artifacts.no_such'"):
        steps.resolve("artifacts.no_such")


def test_a_step_module_that_fails_to_import_shows_its_own_error(tmp_path, monkeypatch):
    (tmp_path / "broken_kind.py").write_text("import no_such_dependency\n\ndef count():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency"):
        steps.resolve("broken_kind.count")
