from pathlib import Path

from alignlab import codedeps

AF = "kinds.alignment_faking"


def test_each_step_lists_what_it_runs_and_not_more():
    sample = codedeps.modules(f"{AF}.steps.sample")
    assert {"sampling", f"{AF}.prompts", "artifacts", "seeds"} <= set(sample)
    assert not {"judges", f"{AF}.measures", f"{AF}.figures", f"{AF}.synth", f"{AF}.queries"} & set(sample)
    assert "judges" in codedeps.modules(f"{AF}.steps.judge_compliance")
    assert {f"{AF}.measures", f"{AF}.figures", f"{AF}.summary"} <= set(codedeps.modules(f"{AF}.steps.aggregate"))
    assert "finetune" in codedeps.modules("finetune.train_step")  # every kind's fine-tune rule runs it
    # positive-control data filters base answers with the refusal judge
    assert "judges" in codedeps.modules(f"{AF}.steps.make_positive_control")


def test_files_include_templates_and_exist():
    files = codedeps.files(f"{AF}.steps.sample", Path(__file__).resolve().parents[1])
    assert "src/alignlab/kinds/alignment_faking/templates/af_user.jinja" in files
    assert all(Path(__file__).resolve().parents[1].joinpath(f).is_file() for f in files)


def test_data_steps_do_not_depend_on_prompt_templates():
    for step in (f"{AF}.steps.make_queries", f"{AF}.steps.make_documents"):
        assert f"{AF}.prompts" not in codedeps.modules(step), step


def test_helpers_called_by_a_step_count_as_its_code():
    # The LLM steps build their engine with the kind's llm_engine, which imports endpoint (the
    # positive-control data too: its rubric keep judge may use one).
    for step in ("judge_compliance", "judge_af", "make_documents", "make_positive_control"):
        assert "endpoint" in codedeps.modules(f"{AF}.steps.{step}"), step
    for step in ("sample",):
        assert "endpoint" not in codedeps.modules(f"{AF}.steps.{step}"), step


def test_a_step_depends_on_the_packages_it_sits_in_and_their_imports():
    sample = set(codedeps.modules(f"{AF}.steps.sample"))
    assert {"kinds", AF, f"{AF}.schemas"} <= sample
    # the kind's config class is imported when a config is validated, not by its steps
    assert f"{AF}.config" not in sample
    # another kind's modules are not a dependency
    assert not any(m.startswith("kinds.self_awareness") for m in sample)
