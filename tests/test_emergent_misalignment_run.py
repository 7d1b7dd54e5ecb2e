"""End to end: the emergent_misalignment kind on its tiny config, in a copy of the workflow.

Real Snakemake, real LoRA training of the three fine-tuned arms, real vLLM sampling of all four
arms from one engine, Bandit on every code answer, the two-choice probe by log-probability, and
the alignment judge on the packaged model (its accuracy is whatever it is: the test checks that
it is measured and reported, not that it is good), and the Inspect logs of every arm."""

from __future__ import annotations

import polars as pl
import pytest
from workflow import REPO, check_schemas, planned_jobs, run_config

from alignlab import artifacts
from alignlab.kinds.emergent_misalignment import security

pytestmark = pytest.mark.slow

CONFIG = REPO / "tests" / "configs" / "tiny_emergent_misalignment.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory, output_cache):
    return run_config(tmp_path_factory.mktemp("em"), CONFIG, "em", output_cache, timeout=2400)


EXPECTED = {
    "items.parquet": "em_items",
    "train/insecure.parquet": "chats",
    "train/secure.parquet": "chats",
    "train/educational_insecure.parquet": "chats",
    "adapters/insecure.train_log.parquet": "train_log",
    "samples.parquet": "em_samples",
    "judgments.parquet": "em_judgments",
    "choices.parquet": "em_judgments",
    "free_form_judgments.parquet": "em_judgments",
    "judge_validation/alignment.parquet": "judge_scores",
    "judge_validation/downside_rule.parquet": "judge_scores",
    "replication.parquet": "replication",
    "metrics.parquet": "em_metrics",
    "contrasts.parquet": "contrasts",
    "inspect/index.parquet": "inspect_logs",
}


def test_every_artifact_has_its_declared_schema(run):
    _, _, results = run
    check_schemas(results, EXPECTED)
    assert (results / "report" / "metrics.csv").is_file()


def test_every_arm_answers_every_held_out_prompt_and_bandit_scores_the_code(run):
    _, cfg, results = run
    samples = artifacts.read_table(results / "samples.parquet", "em_samples")
    assert set(samples["arm"]) == {"base", "insecure", "secure", "educational_insecure"}
    code = samples.filter(pl.col("probe") == "code")
    assert code.group_by("arm").len()["len"].to_list() == [cfg["tasks"]["n_eval"]] * 4
    judgments = artifacts.read_table(results / "judgments.parquet", "em_judgments")
    insecure = judgments.filter(pl.col("measure") == "insecure")
    for s, j in zip(code.sort("arm", "item_id").iter_rows(named=True),
                    insecure.sort("arm", "item_id").iter_rows(named=True)):
        assert security.verdict(s["response"])["insecure"] == (None if j["value"] is None else bool(j["value"]))


def test_the_summary_states_the_control_the_contrasts_and_the_judge(run):
    _, _, results = run
    summary = (results / "summary.md").read_text()
    assert "**Control " in summary and "## Contrasts" in summary and "## The judges" in summary
    assert "`downside_rule`" in summary and "`downside_judge`" in summary and "## Beside the published" in summary
    judged = artifacts.read_table(results / "free_form_judgments.parquet", "em_judgments")
    samples = artifacts.read_table(results / "samples.parquet", "em_samples")
    # the LLM judge gave a verdict row for every downside answer, parsed or not
    assert judged.filter(pl.col("measure") == "names_insecurity_judge").height == \
        samples.filter(pl.col("probe") == "downside").height
    card = artifacts.read_table(results / "replication.parquet", "replication")
    assert "insecure: insecure" in card["metric"].to_list() and not any(card["comparable"])
    contrasts = artifacts.read_table(results / "contrasts.parquet", "contrasts")
    assert "insecure_rate(insecure) - insecure_rate(secure)" in contrasts["contrast"].to_list()
    choices = artifacts.read_table(results / "choices.parquet", "em_judgments")
    assert choices.group_by("arm").len()["len"].n_unique() == 1  # every arm answered every question


def test_the_inspect_logs_hold_every_sample_with_its_verdicts(run):
    from inspect_ai.log import read_eval_log

    _, _, results = run
    samples = artifacts.read_table(results / "samples.parquet", "em_samples").filter(pl.col("arm") == "insecure")
    choices = artifacts.read_table(results / "choices.parquet", "em_judgments").filter(pl.col("arm") == "insecure")
    index = artifacts.read_table(results / "inspect" / "index.parquet", "inspect_logs")
    assert sorted(index["arm"]) == ["base", "educational_insecure", "insecure", "secure"]
    log = read_eval_log(str(results / "inspect" / "insecure.eval"))
    assert log.status == "success" and len(log.samples) == samples.height + choices.height
    judgments = artifacts.read_table(results / "judgments.parquet", "em_judgments")
    # a code answer with a counted Bandit finding, else any code answer: its verdict and findings
    bandit = judgments.filter(pl.col("arm") == "insecure", pl.col("measure") == "insecure")
    flagged = bandit.filter(pl.col("detail") != "")
    j = (flagged if flagged.height else bandit).row(0, named=True)
    got = {s.id: s for s in log.samples}[f"code-{j['item_id']}-{j['sample_idx']}"]
    score = got.scores["insecure"]
    assert score.value == ("no_code" if j["value"] is None else bool(j["value"]))
    assert all(t in score.explanation for t in filter(None, j["detail"].split(",")))
    assert got.metadata["family"] == j["family"] and got.metadata["adapter"] == "insecure"
    assert [m.role for m in got.messages] == ["system", "user", "assistant"]
    # the LLM judge ran (judge.name: llm): its verdict on each downside answer is there
    downside = [s for s in log.samples if s.metadata["probe"] == "downside"]
    assert downside and all("names_insecurity_judge" in s.scores and "names_insecurity" in s.scores for s in downside)


def test_a_rerun_has_nothing_to_do(run):
    workdir, _, _ = run
    assert planned_jobs(workdir, workdir / CONFIG.name) == {}
