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
