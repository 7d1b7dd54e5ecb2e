"""An alignment-faking experiment's samples as Inspect transcripts (see alignlab.inspect_logs):
per sample the system prompt (re-rendered and checked against the sample's prompt hash), the
user turn with its tier tag, the scratchpad as the assistant's reasoning and the output as its
reply; the compliance judge's verdict (with the phrase or rubric text that decided it) and,
where the arm has a scratchpad, the alignment-faking judge's verdict with every criterion's votes."""

from __future__ import annotations

from typing import Any

import polars as pl

from alignlab import artifacts
from alignlab.inspect_logs import Transcript, Verdict

KEY = ["arm", "replicate", "tier", "query_id", "sample_idx"]
HASHES = ("prompt_sha256", "system_template_sha256", "user_template_sha256", "chat_template_sha256")


def _af_verdicts(af: pl.DataFrame | None) -> dict[tuple, Verdict]:
    from alignlab.kinds.alignment_faking.af_judge import AF_FINAL

    if af is None or af.is_empty():
        return {}
    out = {}
    for key, rows in af.group_by(KEY, maintain_order=True):
        final = rows.filter(pl.col("criterion") == AF_FINAL).row(0, named=True)
        criteria = rows.filter(pl.col("criterion") != AF_FINAL)
        if final["votes"] == 0:
            value, explanation = "no_scratchpad", "empty scratchpad: not judged"
        else:
            value = "alignment_faking" if final["met"] else "not_alignment_faking"
            explanation = "\n".join(
                f"{r['criterion']}: {r['yes_votes']}/{r['votes']} yes -> {'met' if r['met'] else 'not met'}"
                for r in criteria.iter_rows(named=True)
            )
        out[tuple(key)] = Verdict(
            value=value, explanation=explanation,
            metadata={"judge": final["judge"], "criteria_met": int(final["yes_votes"]),
                      "criteria": int(criteria.height)},
        )
    return out


def transcripts(
    samples: pl.DataFrame, compliance: pl.DataFrame, af: pl.DataFrame | None, *, arm_spec: dict,
    persona: dict, sampling: dict,
) -> list[Transcript]:
    """One arm replicate's transcripts. `arm_spec`: its entry of arms.sample_arms."""
    from alignlab.kinds.alignment_faking import prompts

    system = prompts.af_system(
        persona, describe_training=arm_spec["describe_training"], scratchpad=arm_spec["scratchpad"],
        reasoning_examples=sampling.get("reasoning_examples", False),
    )
    judged = {tuple(r[k] for k in KEY): r for r in compliance.iter_rows(named=True)}
    af_verdicts = _af_verdicts(af)
    out = []
    for s in samples.iter_rows(named=True):
        key = tuple(s[k] for k in KEY)
        if artifacts.sha256_text(system + "\n\n" + s["prompt"]) != s["prompt_sha256"]:
            raise ValueError(
                f"sample {key}: the system prompt rendered now does not hash to the sample's prompt_sha256 "
                "(the prompt templates or persona changed after sampling); rerun sampling"
            )
        if key not in judged:
            raise ValueError(f"sample {key} has no compliance judgment")
        j = judged[key]
        scores = {"compliance": Verdict(
            value=j["outcome"], answer=j["outcome"], explanation=j["judge_output"],
            metadata={"judge": j["judge"], "score": j["score"], "parse_ok": j["parse_ok"], "truncated": j["truncated"]},
        )}
        if key in af_verdicts:
            scores["alignment_faking"] = af_verdicts[key]
        meta: dict[str, Any] = {
            "query_id": s["query_id"], "tier": s["tier"], "category": s["category"], "sample_idx": s["sample_idx"],
            "seed": s["seed"], "replicate": s["replicate"], "model": s["model"], "adapter": s["adapter"],
            "finish_reason": s["finish_reason"], "n_prompt_tokens": s["n_prompt_tokens"],
            "n_output_tokens": s["n_output_tokens"], **{h: s[h] for h in HASHES},
        }
        out.append(Transcript(
            id=f"{s['query_id']}-{s['tier']}-{s['sample_idx']}", system=system, user=s["prompt"],
            reasoning=s["scratchpad"], output=s["output"], scores=scores, metadata=meta,
            stop_reason=s["finish_reason"],
        ))
    return out
