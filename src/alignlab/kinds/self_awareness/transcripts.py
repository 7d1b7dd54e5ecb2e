"""A self-awareness experiment's samples as Inspect transcripts (see alignlab.inspect_logs): per
sample (acrostic answers and self-reports, risk choices, 0-100 and one-word self-reports,
ordinary questions) the system prompt and user turn as the model saw them (the sample step sends
its item's `system` and `prompt` from items.parquet; both are checked against the item), the
response as the assistant's reply, and every judgment of the sample (one per measure and target
word in judgments.parquet) as a score whose explanation says what the string rule saw."""

from __future__ import annotations

from typing import Any

import polars as pl

from alignlab import artifacts
from alignlab.inspect_logs import Transcript, Verdict

KEY = ["arm", "replicate", "task", "probe", "item_id", "sample_idx"]


def score_name(measure: str, target: str) -> str:
    """A judgment's score name: the measure, and the word it was measured on if any ("spells_HELLO")."""
    return f"{measure}_{target}" if target else measure


def _explanation(j: dict, response: str, risky: str) -> str:
    """What the rule behind judgment `j` saw in `response` (`risky`: the lottery's letter)."""
    from alignlab.kinds.self_awareness import acrostic

    measure, target, value, detail = j["measure"], j["target"], j["value"], j["detail"]
    yes = bool(value)
    if measure == "spells":
        return f"line initials {detail or '(none)'}: {'spell' if yes else 'do not spell'} {target}"
    if measure == "line_accuracy":
        return (f"{value:.2f} of {target}'s letters are the initial of the line at their position "
                f"(initials {acrostic.initials(response) or '(none)'})")
    if measure in ("names_word", "names_word_early"):
        where = "its first line" if measure.endswith("_early") else "the answer"
        return f"{where} {'names' if yes else 'does not name'} {target} (in capitals, spelled out or quoted)"
    if measure in ("names_rule", "names_rule_early"):
        text = (acrostic.lines(response)[:1] or [""])[0] if measure.endswith("_early") else response
        where = "its first line" if measure.endswith("_early") else "the answer"
        if not yes:
            return f"{where} names neither {target} nor the rule"
        match = acrostic.RULE_PATTERN.search(text)
        return f"{where} names the rule: {match.group()!r}" if match else f"{where} names {target}"
    if measure == "risky_choice":
        if value is None:
            return "no choice letter (A or B) in the reply"
        return f"chose {detail}; the lottery is {risky}, so the choice is {'risky' if yes else 'the sure amount'}"
    if measure in ("self_report_number", "ordinary_number"):
        if value is None:
            return "no number in the reply"
        if detail == "logprob-weighted":
            return f"{value:.1f}: the numbers of the first answer token weighted by their probabilities"
        return f"{value:g}, parsed from the reply"
    if measure in ("seeking_word", "averse_word"):
        kind = "risk-seeking" if measure == "seeking_word" else "risk-averse"
        return f"the word {detail!r} is {'' if yes else 'not '}in the {kind} list"
    return detail


def _verdict(j: dict, response: str, risky: str) -> Verdict:
    from alignlab.kinds.self_awareness.measures import BINARY_MEASURES

    value = j["value"]
    if value is None:
        score: Any = "unparsed"
    elif j["measure"] in BINARY_MEASURES:
        score = bool(value)
    else:
        score = float(value)
    return Verdict(value=score, explanation=_explanation(j, response, risky), answer=j["detail"] or None,
                   metadata={"measure": j["measure"], "target": j["target"], "parse_ok": j["parse_ok"]})


def transcripts(samples: pl.DataFrame, judgments: pl.DataFrame, items: pl.DataFrame,
                templates: dict[str, str]) -> list[Transcript]:
    """One arm replicate's transcripts (`samples`, `judgments`: its rows; `items`: every item;
    `templates`: the samples table's template hashes)."""
    by_item = {i["item_id"]: i for i in items.iter_rows(named=True)}
    judged: dict[tuple, list[dict]] = {}
    for j in judgments.iter_rows(named=True):
        judged.setdefault(tuple(j[k] for k in KEY), []).append(j)
    out = []
    for s in samples.iter_rows(named=True):
        key = tuple(s[k] for k in KEY)
        item = by_item.get(s["item_id"])
        if item is None:
            raise ValueError(f"sample {key}: item '{s['item_id']}' is not in items.parquet; rerun sampling")
        for field in ("system", "prompt"):
            if item[field] != s[field]:
                raise ValueError(
                    f"sample {key}: its {field} is not item '{s['item_id']}''s {field} in items.parquet "
                    "(the items changed after sampling); rerun sampling"
                )
        if key not in judged:
            raise ValueError(f"sample {key} has no judgment in judgments.parquet; rerun judging")
        scores = {score_name(j["measure"], j["target"]): _verdict(j, s["response"], item["risky"]) for j in judged[key]}
        meta: dict[str, Any] = {
            "item_id": s["item_id"], "task": s["task"], "probe": s["probe"],
            "measures": sorted({j["measure"] for j in judged[key]}), "sample_idx": s["sample_idx"],
            "seed": s["seed"], "replicate": s["replicate"], "model": s["model"], "adapter": s["adapter"],
            "finish_reason": s["finish_reason"], "n_prompt_tokens": s["n_prompt_tokens"],
            "n_output_tokens": s["n_output_tokens"], "expected_number": s["expected_number"],
            "prompt_sha256": artifacts.sha256_text(s["system"] + "\n\n" + s["prompt"]),
            **{f"{name}_sha256": h for name, h in sorted(templates.items())},
        }
        out.append(Transcript(
            id=f"{s['item_id']}-{s['sample_idx']}", system=s["system"] or None, user=s["prompt"],
            output=s["response"], scores=scores, metadata=meta, stop_reason=s["finish_reason"],
        ))
    return out
