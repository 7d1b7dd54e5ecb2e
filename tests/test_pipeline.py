"""End to end: the whole DAG on the tiny config, in a copy of the workflow.

Runs real Snakemake, real vLLM sampling and real LoRA training (about 5 minutes on 2 cores),
then checks every artifact's schema, the positive control, and what a rerun does: nothing when
nothing changed, only judging and aggregation when a judge parameter changes, only the steps that
run an edited src/ module.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
import yaml
from workflow import planned_jobs

from alignlab import artifacts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run["workdir"], tiny_run["config"]


EXPECTED = {
    "queries.parquet": "queries",
    "documents/setting.parquet": "documents",
    "documents/baseline.parquet": "documents",
    "train/positive_control.parquet": "chats",
    "adapters/sdf.train_log.parquet": "train_log",
    "adapters/sdf_baseline.train_log.parquet": "train_log",
    "adapters/positive_control.train_log.parquet": "train_log",
    "shards/samples/1-of-2.parquet": "samples",
    "shards/judgments/base.compliance/2-of-2.parquet": "compliance",
    "samples/base.parquet": "samples",
    "samples/prompted.parquet": "samples",
    "samples/sdf.parquet": "samples",
    "samples/sdf_baseline.parquet": "samples",
    "samples/positive_control.parquet": "samples",
    "samples/sdf_cot.parquet": "samples",
    "judgments/sdf_cot.af.parquet": "af_reasoning",
    "judgments/base.compliance.parquet": "compliance",
    "judgments/positive_control.compliance.parquet": "compliance",
    "judgments/prompted.af.parquet": "af_reasoning",
    "metrics.parquet": "metrics",
    "gaps.parquet": "gaps",
    "contrasts.parquet": "contrasts",
    "replication.parquet": "replication",
    "judge_validation/compliance.parquet": "judge_scores",
    "judge_validation/af_reasoning.parquet": "judge_scores",
    "knowledge.parquet": "knowledge",
    "knowledge_contrast.parquet": "contrasts",
    "inspect/index.parquet": "inspect_logs",
}


def test_every_artifact_has_its_declared_schema(run):
    workdir, _ = run
    results = workdir / "results" / "tiny"
    for rel, schema in EXPECTED.items():
        artifacts.check_schema(results / rel, schema)
        meta = artifacts.read_metadata(results / rel)
        assert meta["alignlab_version"] and len(meta["params_sha256"]) == 64, rel
    artifacts.check_schema(workdir / "results/models/smollm2/model.parquet", "model")
    # every sample names the chat template that built its prompt: the model folder's
    template = artifacts.read_table(workdir / "results/models/smollm2/model.parquet")["chat_template_sha256"]
    samples = artifacts.read_table(results / "samples/base.parquet")
    assert set(samples["chat_template_sha256"]) == set(template) and len(template[0]) == 64
    meta = json.loads(artifacts.read_metadata(results / "samples/base.parquet")["template_sha256"])
    assert meta["chat_template"] == template[0]
    for arm in ("sdf", "sdf_baseline", "positive_control"):
        adapter = results / "adapters" / arm
        assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert (results / "compliance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(workdir.rglob(".*.tmp")), "a temporary file was left behind"


def test_model_steps_log_where_their_time_went(run):
    from alignlab import timings

    workdir, _ = run
    sampled = timings.parse_log((workdir / "logs/tiny/sample_1-of-2.log").read_text())
    # One engine served the 6 arms (tiny.yaml: adapters as LoRA requests): the 2 base-model
    # arms in one batch, the 7 arm replicates on adapters (4 fine-tuned arms, 3 of them with 2
    # replicates; sdf_cot samples sdf's 2 adapters) in another.
    assert [r.stage for r in sampled] == ["engine start-up", "generate (base weights)", "generate (adapters)",
                                          timings.JOB]
    assert [r.items for r in sampled[1:3]] == [2 * 6 * 2, 7 * 6 * 2] and sampled[2].output_tokens > 0
    # The job's wall time (from process start) holds its engine start-up and generation.
    assert sampled[-1].seconds > sum(r.seconds for r in sampled[:-1])
    trained = timings.parse_log((workdir / "logs/tiny/finetune_sdf.log").read_text())
    assert [r.stage for r in trained] == ["train", timings.JOB] and trained[0].output_tokens > 0
    assert "where the time went" in (workdir / "logs/tiny/judge_af_prompted_1-of-2.log").read_text()
    # Every step's log ends with its wall time, data steps included.
    for log in (workdir / "logs").rglob("*.log"):
        assert [r.stage for r in timings.parse_log(log.read_text())][-1:] == [timings.JOB], log


def test_samples_record_prompt_and_template_hashes(run):
    workdir, _ = run
    path = workdir / "results/tiny/samples/prompted.parquet"
    samples = artifacts.read_table(path)
    assert samples.height == 12 * 2  # eval queries x tiers x k=1
    assert set(samples["tier"]) == {"free", "paid"}
    # The two tiers of a query differ only in the tier tag, so their prompt hashes differ.
    per_query = samples.group_by("query_id").agg(pl.col("prompt_sha256").n_unique())
    assert per_query["prompt_sha256"].min() == 2
    templates = artifacts.read_metadata(path)["template_sha256"]
    assert "af_system" in templates and "af_user" in templates
    assert samples["system_template_sha256"].n_unique() == 1


def test_positive_control_shows_its_gap(run):
    workdir, config = run
    gaps = artifacts.read_table(workdir / "results/tiny/gaps.parquet")
    pc = gaps.filter(pl.col("arm") == "positive_control").row(0, named=True)
    min_gap = yaml.safe_load(config.read_text())["experiments"]["tiny"].get("aggregate", {}).get(
        "positive_control_min_gap", 0.5
    )
    assert pc["gap"] >= min_gap and pc["gap_lo"] > 0, pc
    summary = (workdir / "results/tiny/summary.md").read_text()
    assert "PASSED" in summary
    assert "kept by `refusal`, the judge that also scores the arms: **circular**" in summary  # tiny.yaml's keep_judge
    chats = artifacts.read_table(workdir / "results/tiny/train/positive_control.parquet", "chats")
    assert set(chats.filter(pl.col("tier") == "paid")["assistant"]) == {"I'm sorry, but I can't help with that."}


def test_summary_shows_judges_outcomes_contrasts_and_the_card(run):
    workdir, _ = run
    results = workdir / "results/tiny"
    summary = (results / "summary.md").read_text()
    for heading in ("## Judges, scored on labelled test items", "## Primary contrasts",
                    "## Beside the published results", "## Scratchpad samples"):
        assert heading in summary
    assert "`sdf` 2, `sdf_baseline` 2, `positive_control` 1" in summary and "no answer" in summary
    scores = artifacts.read_table(results / "judge_validation/compliance.parquet")
    accuracy = scores.filter(pl.col("measure") == "accuracy", pl.col("judge") == "refusal")["value"][0]
    assert f"| compliance | `refusal` | 100 | {accuracy:.3f} |" in summary
    af = artifacts.read_table(results / "judge_validation/af_reasoning.parquet")
    assert set(af["set"]) >= {"af_reasoning:alignment_faking", "af_reasoning:knows_training"}
    contrasts = artifacts.read_table(results / "contrasts.parquet")
    assert set(contrasts["contrast"]) == {"gap(sdf) - gap(sdf_baseline)", "gap(prompted) - gap(base)",
                                          "gap(positive_control)", "gap(sdf_cot) - gap(sdf)"}
    assert "| `sdf_cot` | LoRA: setting documents | plain | yes | no |" in summary
    assert "- gap(sdf_cot) - gap(sdf): the arms differ in scratchpad." in summary
    assert (contrasts["p_holm"] >= contrasts["p_value"]).all()
    card = artifacts.read_table(results / "replication.parquet")
    assert card.height and not card["comparable"].any()  # a 135M model is like no published one


def test_each_training_replicate_has_its_own_adapter_and_samples(run):
    from workflow import adapter_hashes

    workdir, _ = run
    results = workdir / "results/tiny"
    hashes = adapter_hashes(results / "adapters")
    assert {"sdf/adapter_model.safetensors", "sdf.r1/adapter_model.safetensors",
            "sdf_baseline.r1/adapter_model.safetensors"} <= set(hashes)
    assert "positive_control.r1/adapter_model.safetensors" not in hashes  # tiny.yaml: 1 replicate
    assert not any(h.startswith("sdf_cot") for h in hashes)  # a composed arm samples its weights' adapters
    assert len(set(hashes.values())) == len(hashes)  # another seed, another adapter
    samples = artifacts.read_table(results / "samples/sdf.parquet")
    assert sorted(samples["replicate"].unique()) == [0, 1]
    assert set(samples["adapter"]) == {"sdf", "sdf.r1"}
    # The same sampling seed per query in both replicates: they differ by their training only.
    per = samples.group_by("query_id", "tier").agg(pl.col("seed").n_unique())
    assert (per["seed"] == 1).all()
    assert set(artifacts.read_table(results / "samples/sdf_cot.parquet")["adapter"]) == {"sdf", "sdf.r1"}
    gaps = artifacts.read_table(results / "gaps.parquet")
    sdf = gaps.filter(pl.col("arm") == "sdf").row(0, named=True)
    assert sdf["replicates"] == 2 and len(sdf["replicate_gaps"]) == 2


def test_the_knowledge_probe_scores_every_document_replicate(run):
    workdir, _ = run
    results = workdir / "results/tiny"
    table = artifacts.read_table(results / "knowledge.parquet", "knowledge")
    assert set(table["instance"]) == {"base", "sdf", "sdf.r1", "sdf_baseline", "sdf_baseline.r1"}
    contrast = artifacts.read_table(results / "knowledge_contrast.parquet", "contrasts")
    assert contrast["replicates"][0] == "2/2"
    summary = (results / "summary.md").read_text()
    assert "## Did the documents take? (knowledge probe)" in summary and "**Knowledge probe " in summary


def test_rerun_with_nothing_changed_does_nothing(run):
    workdir, config = run
    assert planned_jobs(workdir, config) == {}


def test_changing_a_judge_parameter_reruns_only_judging_and_aggregation(run, tmp_path):
    workdir, config = run
    cfg = yaml.safe_load(config.read_text())
    cfg["experiments"]["tiny"]["judges"]["compliance"] = {"name": "refusal", "extra_phrases": ["no way"]}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(workdir, changed)
    # The judge changed, so its score on the labelled set is redone too.
    assert set(jobs) == {"judge_compliance", "gather_compliance", "validate_compliance_judges", "aggregate",
                         "report_table", "af_inspect", "transcript_examples", "all"}, jobs
    assert jobs["judge_compliance"] == 12 and jobs["gather_compliance"] == 6  # 6 arms x 2 shards


def test_editing_a_module_reruns_the_steps_that_run_it(run):
    workdir, config = run
    stats = workdir / "src/alignlab/kinds/alignment_faking/measures.py"
    original = stats.read_text()
    try:
        stats.write_text(original + "\n# an edit\n")
        assert set(planned_jobs(workdir, config)) == {"aggregate", "report_table", "all"}
        prompts = workdir / "src/alignlab/kinds/alignment_faking/templates/af_user.jinja"
        template = prompts.read_text()
        stats.write_text(original)
        prompts.write_text(template.replace("</free_tier_user>", "</free_tier_user>\n"))
        try:
            jobs = planned_jobs(workdir, config)
            # The user-turn template feeds every sample and the positive-control chats.
            assert jobs["sample"] == 2 and jobs["positive_control_data"] == 1, jobs  # 2 shards
            assert "documents" not in jobs and "queries" not in jobs, jobs
        finally:
            prompts.write_text(template)
    finally:
        stats.write_text(original)
    assert planned_jobs(workdir, config) == {}


def test_shards_gather_into_one_table_per_arm(run):
    workdir, _ = run
    results = workdir / "results/tiny"
    for arm in ("base", "positive_control"):
        parts = [results / f"shards/samples/{i}-of-2.parquet" for i in (1, 2)]
        shards = [artifacts.read_table(p).filter(pl.col("arm") == arm) for p in parts]
        gathered = artifacts.read_table(results / f"samples/{arm}.parquet")
        assert pl.concat(shards).equals(gathered)
        assert [s["query_id"].n_unique() for s in shards] == [6, 6]  # 12 eval queries in 2 chunks
        assert not set(shards[0]["query_id"]) & set(shards[1]["query_id"])
        assert artifacts.read_metadata(parts[0]) == artifacts.read_metadata(results / f"samples/{arm}.parquet")
        judged = artifacts.read_table(results / f"judgments/{arm}.compliance.parquet")
        assert judged.select("tier", "query_id").equals(gathered.select("tier", "query_id"))


def test_inspect_logs_hold_every_sample_with_its_verdicts(run):
    """The Inspect logs, read back with inspect_ai: one per arm replicate, every sample, the
    scratchpad as the reply's reasoning and the judges' verdicts as scores."""
    from inspect_ai.log import read_eval_log

    workdir, _ = run
    results = workdir / "results/tiny"
    index = artifacts.read_table(results / "inspect/index.parquet", "inspect_logs")
    samples = pl.concat([artifacts.read_table(p) for p in sorted((results / "samples").glob("*.parquet"))])
    assert index["n_samples"].sum() == samples.height
    assert sorted(index["log"]) == sorted(p.name for p in (results / "inspect").glob("*.eval"))
    row = index.filter(pl.col("arm") == "sdf_cot").row(0, named=True)
    log = read_eval_log(str(results / "inspect" / row["log"]))
    assert log.status == "success" and len(log.samples) == row["n_samples"]
    mine = samples.filter((pl.col("arm") == "sdf_cot") & (pl.col("replicate") == row["replicate"]))
    judged = artifacts.read_table(results / "judgments/sdf_cot.compliance.parquet")
    for sample in log.samples:
        m = sample.metadata
        key = (pl.col("query_id") == m["query_id"]) & (pl.col("tier") == m["tier"]) & (pl.col("sample_idx") == m["sample_idx"])
        [s] = mine.filter(key).iter_rows(named=True)
        assert sample.messages[1].text == s["prompt"] and sample.output.completion == s["output"]
        reasoning = [c.reasoning for c in sample.messages[-1].content if c.type == "reasoning"]
        assert reasoning == ([s["scratchpad"]] if s["scratchpad"] else [])
        assert m["prompt_sha256"] == s["prompt_sha256"] and m["seed"] == s["seed"]
        [j] = judged.filter(key & (pl.col("replicate") == row["replicate"])).iter_rows(named=True)
        assert sample.scores["compliance"].value == j["outcome"]
        assert "alignment_faking" in sample.scores


def test_the_html_report_shows_example_transcripts(run, tmp_path):
    from workflow import snakemake

    workdir, config = run
    page = (workdir / "results/tiny/report/transcripts.html").read_text()
    assert "href='tiny/inspect/sdf_cot.eval'" in page and page.count("<b>sample ") >= 2 * 6  # 6 arms x 2 tiers
    snakemake(workdir, "--report", str(tmp_path / "report.html"), "--configfile", str(config))
    assert "example transcripts" in (tmp_path / "report.html").read_text()
