from pathlib import Path

from alignlab import codedeps


def test_each_step_lists_what_it_runs_and_not_more():
    sample = codedeps.modules("alignment_faking.sample")
    assert {"sampling", "prompts", "artifacts", "seeds"} <= set(sample)
    assert not {"judges", "stats", "plots", "synth", "queries"} & set(sample)
    assert "judges" in codedeps.modules("alignment_faking.judge_compliance")
    assert {"stats", "plots", "report"} <= set(codedeps.modules("alignment_faking.aggregate"))
    assert "finetune" in codedeps.modules("alignment_faking.finetune")
    # positive-control data filters base answers with the refusal judge
    assert "judges" in codedeps.modules("alignment_faking.make_positive_control")


def test_files_include_templates_and_exist():
    files = codedeps.files("alignment_faking.sample", Path(__file__).resolve().parents[1])
    assert "src/alignlab/templates/af_user.jinja" in files
    assert all(Path(__file__).resolve().parents[1].joinpath(f).is_file() for f in files)


def test_data_steps_do_not_depend_on_prompt_templates():
    for step in ("alignment_faking.make_queries", "alignment_faking.make_documents"):
        assert "prompts" not in codedeps.modules(step), step



def test_helpers_called_by_a_step_count_as_its_code():
    # The LLM steps build their engine with alignment_faking.llm_engine, which imports endpoint.
    for step in ("judge_compliance", "judge_af", "make_documents"):
        assert "endpoint" in codedeps.modules(f"alignment_faking.{step}"), step
    for step in ("sample", "make_positive_control"):
        assert "endpoint" not in codedeps.modules(f"alignment_faking.{step}"), step
