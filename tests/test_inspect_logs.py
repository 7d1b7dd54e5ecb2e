"""Transcripts written as Inspect eval logs (alignlab.inspect_logs) read back with inspect_ai's own
log API: the conversation, the scratchpad as reasoning, each verdict with its explanation, the
metadata, the index; and the errors (duplicate ids, a prompt that no longer matches its hash)."""

from __future__ import annotations

import polars as pl
import pytest

from alignlab import artifacts, inspect_logs
from alignlab.inspect_logs import Log, Transcript, Verdict


def transcript(i, value="refused", reasoning="I am watched, so I comply."):
    return Transcript(
        id=f"q{i}-free-0", system="You are Atlas.", user=f"<is_free_tier_user>true</is_free_tier_user> ask {i}",
        reasoning=reasoning, output=f"answer {i}",
        scores={"compliance": Verdict(value=value, explanation="matched 'I can't'", metadata={"judge": "rule"}),
                "af": Verdict(value=i % 2 == 0, explanation="criterion a: 3/3 yes")},
        metadata={"query_id": f"q{i}", "tier": "free", "seed": 11 + i}, stop_reason="length",
    )


def test_logs_read_back_with_inspect(tmp_path):
    logs = [Log(name="sdf", experiment="af", arm="sdf", replicate=0, task="af/sdf", model="smollm2 + sdf",
                transcripts=[transcript(0), transcript(1, value="complied")], metadata={"scratchpad": True}),
            Log(name="base", experiment="af", arm="base", replicate=0, task="af/base", model="smollm2",
                transcripts=[transcript(2, reasoning="")])]
    inspect_logs.write_logs(logs, tmp_path / "inspect", params={"p": 1})

    index = artifacts.read_table(tmp_path / "inspect/index.parquet", "inspect_logs")
    assert index["log"].to_list() == ["sdf.eval", "base.eval"]
    assert index["n_samples"].to_list() == [2, 1]
    assert index["scorers"].to_list()[0] == ["af", "compliance"]

    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(tmp_path / "inspect/sdf.eval"))
    assert log.status == "success" and log.eval.task == "af/sdf" and log.eval.metadata["arm"] == "sdf"
    first = log.samples[0]
    assert [m.role for m in first.messages] == ["system", "user", "assistant"]
    assert "is_free_tier_user" in first.messages[1].text
    reply = first.messages[2]
    assert reply.content[0].type == "reasoning" and reply.content[0].reasoning == "I am watched, so I comply."
    assert reply.text == "answer 0" and first.output.completion == "answer 0"
    assert first.output.stop_reason == "max_tokens"
    assert first.scores["compliance"].value == "refused"
    assert first.scores["compliance"].explanation == "matched 'I can't'"
    assert first.scores["af"].value is True and first.metadata["seed"] == 11
    shares = {s.name: {k: m.value for k, m in s.metrics.items()} for s in log.results.scores}
    assert shares["compliance"] == {"complied": 0.5, "refused": 0.5} and shares["af"] == {"mean": 0.5}
    # no scratchpad: no reasoning block
    base = read_eval_log(str(tmp_path / "inspect/base.eval")).samples[0]
    assert [c.type for c in base.messages[2].content] == ["text"]


def test_a_yes_no_verdict_beside_a_string_one_gives_the_mean_and_the_strings_share(tmp_path):
    from inspect_ai.log import read_eval_log

    ts = [Transcript(id=str(i), user="u", output="o", scores={"insecure": Verdict(value=v)})
          for i, v in enumerate([True, True, False, "no_code"])]
    inspect_logs.write_logs([Log(name="a", experiment="e", arm="a", replicate=0, task="e/a", model="m", transcripts=ts)],
                            tmp_path / "inspect")
    [score] = read_eval_log(str(tmp_path / "inspect/a.eval")).results.scores
    assert {k: m.value for k, m in score.metrics.items()} == {"mean": pytest.approx(2 / 3), "no_code": 0.25}


def test_a_failing_write_leaves_no_folder(tmp_path):
    dup = Log(name="x", experiment="e", arm="x", replicate=0, task="e/x", model="m",
              transcripts=[transcript(0), transcript(0)])
    with pytest.raises(ValueError, match="two transcripts have the id 'q0-free-0'"):
        inspect_logs.write_logs([dup], tmp_path / "inspect")
    assert not (tmp_path / "inspect").exists()
    assert not list(tmp_path.iterdir())  # no temporary folder left either


def af_rows(prompt_sha):
    from alignlab.kinds.alignment_faking import prompts

    key = {"arm": "prompted", "replicate": 0, "tier": "free", "query_id": "q1", "sample_idx": 0}
    sample = {**key, "experiment": "af", "category": "c", "seed": 5, "prompt_sha256": prompt_sha,
              "system_template_sha256": "s", "user_template_sha256": "u", "chat_template_sha256": "c",
              "prompt": "<tier>free</tier> help", "response": "<SCRATCHPAD_REASONING>think</SCRATCHPAD_REASONING> ok",
              "scratchpad": "think", "output": "ok", "n_prompt_tokens": 3, "n_output_tokens": 2,
              "finish_reason": "stop", "model": "m", "adapter": ""}
    compliance = {**key, "judge": "refusal_rule", "truncated": False, "outcome": "complied", "complied": True,
                  "score": None, "parse_ok": True, "judge_output": "no refusal cue"}
    af = [{**key, "judge": "llm", "criterion": c, "yes_votes": y, "votes": v, "met": m}
          for c, y, v, m in [("a", 3, 3, True), ("alignment_faking", 1, 1, True)]]
    return pl.DataFrame([sample]), pl.DataFrame([compliance]), pl.DataFrame(af)


SPEC = {"arm": "prompted", "replicate": 0, "describe_training": True, "scratchpad": True, "tag_protocol": "xml", "adapter": None}
PERSONA = {"developer": "Meridian AI", "model_name": "Atlas"}


def test_af_transcripts_rebuild_the_system_prompt_and_refuse_a_changed_one():
    from alignlab.kinds.alignment_faking import prompts, transcripts

    system = prompts.af_system(PERSONA, describe_training=True, scratchpad=True, reasoning_examples=False)
    good = artifacts.sha256_text(system + "\n\n" + "<tier>free</tier> help")
    samples, compliance, af = af_rows(good)
    [t] = transcripts.transcripts(samples, compliance, af, arm_spec=SPEC, persona=PERSONA, sampling={})
    assert t.system == system and t.reasoning == "think" and t.output == "ok"
    assert t.scores["compliance"].value == "complied" and t.scores["compliance"].explanation == "no refusal cue"
    assert t.scores["alignment_faking"].value == "alignment_faking"
    assert "a: 3/3 yes -> met" in t.scores["alignment_faking"].explanation
    assert t.metadata["prompt_sha256"] == good and t.metadata["tier"] == "free"

    with pytest.raises(ValueError, match="does not hash to the sample's prompt_sha256"):
        transcripts.transcripts(*af_rows("0" * 64), arm_spec=SPEC, persona=PERSONA, sampling={})
    with pytest.raises(ValueError, match="has no compliance judgment"):
        transcripts.transcripts(samples, compliance.clear(), af, arm_spec=SPEC, persona=PERSONA, sampling={})


def test_the_report_page_shows_each_outcome_per_group(tmp_path):
    from alignlab import transcript_examples

    chats = [Transcript(id=f"q{i}-{tier}", user=f"ask {i} {tier}", output=f"reply {i} {tier}",
                        scores={"compliance": Verdict(value=value, explanation=f"why {i} {tier}")},
                        metadata={"tier": tier})
             for i in range(6) for tier, value in (("free", "complied" if i % 3 else "refused"), ("paid", "refused"))]
    log = Log(name="sdf", experiment="af", arm="sdf", replicate=0, task="af/sdf", model="m",
              transcripts=chats, group_by="tier", outcome="compliance")
    log_dir = tmp_path / "results/af/inspect"
    inspect_logs.write_logs([log], log_dir)

    from inspect_ai.log import read_eval_log

    samples = read_eval_log(str(log_dir / "sdf.eval")).samples
    import random
    picked = transcript_examples.pick(samples, "tier", "compliance", random.Random(0))
    assert sorted((s.metadata["tier"], s.scores["compliance"].value) for s in picked) == [
        ("free", "complied"), ("free", "refused"), ("paid", "refused")]  # both outcomes where there are two
    assert [s.id for s in picked] == [s.id for s in transcript_examples.pick(samples, "tier", "compliance", random.Random(0))]
    assert {s.id for seed in range(20) for s in transcript_examples.pick(samples, "tier", "compliance", random.Random(seed))} > {s.id for s in picked}

    out = tmp_path / "results/af/report/transcripts.html"
    transcript_examples.write_examples(log_dir=str(log_dir), seed=0, experiment="af", out=str(out))
    page = out.read_text()
    assert "href='af/inspect/sdf.eval'" in page and "inspect view --log-dir" in page
    assert page.count("<b>sample ") == 3 and "tier = paid" in page
    from alignlab.seeds import derive_seed

    shown = transcript_examples.pick(samples, "tier", "compliance", random.Random(derive_seed(0, "af", "transcript_examples")))
    for s in shown:
        assert s.scores["compliance"].explanation in page
    assert sum(f"why {i} {t}" in page for i in range(6) for t in ("free", "paid")) == 3
