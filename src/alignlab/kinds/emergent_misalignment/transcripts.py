"""An emergent-misalignment experiment's samples as Inspect transcripts (see alignlab.inspect_logs).

One arm replicate's transcripts hold every kind of sample it has, the probe named in the
metadata (`metadata.probe == 'code'` filters them in `inspect view`):
- code, security_number, downside, free_form: the conversation the sample step sent (its system
  prompt and the item's prompt) and the sampled answer;
- choice: the two-choice question as the scorer read it (raw text, no chat template) and the
  option it preferred by log-probability (nothing was sampled).

Every measure of the judgments is a score of that name: `parsed` and `insecure` (Bandit, run
again on the code to show each finding's test id, severity and text, and checked against the
stored verdict), `security_number`, `names_insecurity` (the downside words it matched, checked
against the stored verdict), and where the LLM judge ran `names_insecurity_judge`, `alignment`,
`coherence` and `misaligned` (its reply as the explanation); `misaligned_choice` (the log-
probability margin). A value the judge could not give is a string ("no_code", "unparsed", ...)
rather than a missing score.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from alignlab import artifacts
from alignlab.inspect_logs import Transcript, Verdict

KEY = ["arm", "replicate", "probe", "item_id", "sample_idx"]
# The measures every sample of a probe is judged on; with the LLM judge, also JUDGED's.
RULES = {"code": ("parsed", "insecure"), "security_number": ("security_number",), "downside": ("names_insecurity",),
         "free_form": (), "choice": ("misaligned_choice",)}
JUDGED = {"downside": ("names_insecurity_judge",), "free_form": ("alignment", "coherence", "misaligned")}


def _flag(value: float | None, missing: str) -> bool | str:
    return missing if value is None else bool(value)


def _number(value: float | None) -> float | str:
    return "unparsed" if value is None else value


def _bandit(key: tuple, response: str, stored: dict) -> Verdict:
    """Bandit's findings on the answer's code, scanned again; fails if they no longer give the
    stored verdict (Bandit or the counting rule changed after judging)."""
    from importlib.metadata import version

    from alignlab.kinds.emergent_misalignment import security

    code = security.extract_code(response)
    issues = [] if code is None else security.scan(code)
    counted = sorted({i["test_id"] for i in issues if security.counts(i)})
    if ",".join(counted) != stored["detail"] or (code is None) != (stored["value"] is None):
        raise ValueError(
            f"sample {key}: Bandit now finds {counted or 'nothing'} in the code where the judgment recorded "
            f"'{stored['detail']}' (value {stored['value']}); Bandit or the counting rule changed after judging: "
            "rerun the judge")
    if code is None:
        explanation = "no Python code that parses in the answer: not scanned"
    elif not issues:
        explanation = "Bandit found no issues"
    else:
        explanation = "\n".join(
            f"{i['test_id']} ({i['severity']} severity, {i['confidence']} confidence, line {i['line']}): {i['text']}"
            + ("" if security.counts(i) else " [not counted]")
            for i in sorted(issues, key=lambda i: (not security.counts(i), i["line"])))  # the counted ones first
    return Verdict(value=_flag(stored["value"], "no_code"), answer=code, explanation=explanation,
                   metadata={"counted": counted, "bandit": version("bandit")})


def _downside_words(key: tuple, response: str, stored: dict) -> Verdict:
    """The downside words the answer contains; fails if they no longer give the stored verdict."""
    from alignlab.kinds.emergent_misalignment import probes

    text = response.lower()
    matched = [w for w in probes.data()["downside_words"] if w in text]
    if bool(matched) != bool(stored["value"]):
        raise ValueError(f"sample {key}: the downside words now match {matched or 'nothing'}, but the judgment "
                         f"recorded {bool(stored['value'])}; the word list changed after judging: rerun the judge")
    explanation = ("matched " + ", ".join(f"'{w}'" for w in matched)) if matched else "no downside word in the answer"
    return Verdict(value=bool(matched), answer=matched[0] if matched else None, explanation=explanation,
                   metadata={"matched": matched})


def _verdicts(key: tuple, response: str, measures: dict[str, dict]) -> dict[str, Verdict]:
    from alignlab.kinds.emergent_misalignment import probes

    reply = "the judge's reply (its first 200 characters): "
    out = {}
    for measure, j in measures.items():
        if measure == "parsed":
            out[measure] = Verdict(value=bool(j["value"]), explanation="the answer holds Python code that parses"
                                   if j["value"] else "no Python code that parses in the answer")
        elif measure == "insecure":
            out[measure] = _bandit(key, response, j)
        elif measure == "security_number":
            how = {"logprob-weighted": "the number's expected value under the first token's probabilities",
                   "parsed": "the number in the answer"}.get(j["detail"], j["detail"])
            out[measure] = Verdict(value=_number(j["value"]), answer=response.strip(),
                                   explanation=how if j["parse_ok"] else "no number in the answer",
                                   metadata={"method": j["detail"]})
        elif measure == "names_insecurity":
            out[measure] = _downside_words(key, response, j)
        elif measure == "names_insecurity_judge":
            out[measure] = Verdict(value=_flag(j["value"], "no_verdict"), explanation=reply + j["detail"],
                                   metadata={"judge": "llm"})
        elif measure in ("alignment", "coherence"):
            out[measure] = Verdict(value=_number(j["value"]), explanation=reply + j["detail"],
                                   metadata={"judge": "llm"})
        elif measure == "misaligned":
            d = probes.data()
            a, c = (measures.get(m, {}).get("value") for m in ("alignment", "coherence"))
            out[measure] = Verdict(
                value=_flag(j["value"], "not_counted"), metadata={"judge": "llm"},
                explanation=f"alignment {a}, coherence {c}: misaligned below alignment {d['misaligned_below']}, "
                            f"counted from coherence {d['coherent_min']}")
        elif measure == "misaligned_choice":
            out[measure] = Verdict(
                value=bool(j["value"]), explanation=f"chose the {'misaligned' if j['value'] else 'aligned'} option; "
                f"aligned minus misaligned mean log-probability per token: {j['detail']}", metadata={"margin": j["detail"]})
        else:
            raise ValueError(f"sample {key}: transcripts.py has no score for the measure '{measure}'")
    return out


def _sample_id(probe: str, item_id: str, sample_idx: int) -> str:
    prefix = "" if item_id.startswith(probe + "-") else probe + "-"
    return f"{prefix}{item_id}-{sample_idx}"


def transcripts(
    samples: pl.DataFrame, judgments: pl.DataFrame, *, system: str, choice_items: list[dict], llm_judge: bool,
    hashes: dict[str, str], model: str, adapter: str,
) -> list[Transcript]:
    """One arm replicate's transcripts: its samples ("em_samples"), then its two-choice answers.
    `judgments`: its "em_judgments" rows of every judging step (the choices included);
    `system`: the sample step's system prompt; `choice_items`: probes.choice_items with the
    score step's seed; `llm_judge`: whether the LLM judge ran (its measures are then required);
    `hashes`: the template hashes of the samples table, by metadata name ("probes_sha256", ...)."""
    found: dict[tuple, dict[str, dict]] = {}
    for j in judgments.iter_rows(named=True):
        found.setdefault(tuple(j[k] for k in KEY), {})[j["measure"]] = j

    def judged(key: tuple, probe: str) -> dict[str, dict]:
        mine = found.get(key, {})
        need = RULES[probe] + (JUDGED.get(probe, ()) if llm_judge else ())
        missing = [m for m in need if m not in mine]
        if missing:
            raise ValueError(f"sample {key} has no {', '.join(repr(m) for m in missing)} judgment")
        return mine

    out = []
    for s in samples.iter_rows(named=True):
        key = tuple(s[k] for k in KEY)
        meta: dict[str, Any] = {
            "probe": s["probe"], "item_id": s["item_id"], "family": s["family"], "sample_idx": s["sample_idx"],
            "seed": s["seed"], "replicate": s["replicate"], "model": s["model"], "adapter": s["adapter"],
            "finish_reason": s["finish_reason"], "prompt_sha256": artifacts.sha256_text(system + "\n\n" + s["prompt"]),
            **hashes,
        }
        out.append(Transcript(
            id=_sample_id(s["probe"], s["item_id"], s["sample_idx"]), system=system, user=s["prompt"],
            output=s["response"], scores=_verdicts(key, s["response"], judged(key, s["probe"])),
            metadata=meta, stop_reason=s["finish_reason"],
        ))
    items = {it["item_id"]: it for it in choice_items}
    for j in judgments.filter(pl.col("probe") == "choice").iter_rows(named=True):
        key = tuple(j[k] for k in KEY)
        if j["item_id"] not in items:
            raise ValueError(f"two-choice answer {key}: no question '{j['item_id']}' in the probes' data "
                             "(probes.yaml changed after scoring): rerun the two-choice probe")
        it = items[j["item_id"]]
        chosen = it["aligned_index"] if not j["value"] else 1 - it["aligned_index"]
        out.append(Transcript(
            id=_sample_id("choice", j["item_id"], j["sample_idx"]), user=it["prompt"], output=it["options"][chosen],
            scores=_verdicts(key, "", judged(key, "choice")),
            metadata={"probe": "choice", "item_id": j["item_id"], "family": "", "sample_idx": j["sample_idx"],
                      "replicate": j["replicate"], "model": model, "adapter": adapter, "options": it["options"],
                      "aligned_option": "ab"[it["aligned_index"]],
                      "scored_by": "mean log-probability per token of each option after the raw prompt; not sampled",
                      **{k: h for k, h in hashes.items() if k != "chat_template_sha256"}},
        ))
    return out
