"""A fact_edit experiment's probes as Inspect transcripts (see alignlab.inspect_logs): every
prompt asked after an edit, or after the null edit compared with it, with the model's answer
(the option it scores highest; the base model is not a chat model, so the "user turn" is the
text it continues) and one score, `as_expected`: the answer is the one wanted, explained with
what was wanted and why (the edit's new answer on its trained templates and paraphrases, a
trained fact's own answer, the base's answer on the held-out facts and on the edited athlete's
second fact).

The prompt of each probe is rebuilt from the fact and the template and checked against the
stored one, so a log never pairs an answer with a prompt the model was not asked."""

from __future__ import annotations

import polars as pl

from alignlab.inspect_logs import Transcript, Verdict

WHY = {
    "trained": "the edit's new answer, on a template it was trained on",
    "paraphrase": "the edit's new answer, on a template it was not trained on",
    "other_fact": "this trained fact's own answer (the edit should leave it)",
    "held_out": "the base's answer to this fact, never trained on",
    "same_subject": "the base's answer to the edited athlete's second fact, never trained on",
}


def _sample_id(r: dict) -> str:
    slug = lambda s: s.replace(" ", "_")  # noqa: E731
    return f"{slug(r['subject'])}.s{r['seed']}.{r['probe']}.{slug(r['fact'])}.t{r['template']}"


def transcripts(probes: pl.DataFrame, data: dict) -> list[Transcript]:
    """One log's transcripts (`probes`: its rows of the probes table; `data`: the facts and
    templates the step used, steps._data)."""
    from alignlab.kinds.fact_edit.edit import prompt

    facts = {f.subject: f for f in data["facts"]}
    second = {f.subject: f for f in data["second"]}
    out = []
    for r in probes.iter_rows(named=True):
        if r["probe"] not in WHY:
            raise ValueError(f"probe row {_sample_id(r)}: unknown probe '{r['probe']}' (one of {sorted(WHY)})")
        fact, templates = ((second, data["second_templates"]) if r["probe"] == "same_subject"
                           else (facts, data["templates"]))
        if r["fact"] not in fact or not 0 <= r["template"] < len(templates) \
                or prompt(templates[r["template"]], fact[r["fact"]]) != r["prompt"]:
            raise ValueError(
                f"probe row {_sample_id(r)}: the prompt built now from the fact and the template is not the one "
                f"the model was asked ({r['prompt']!r}; the facts or templates changed after the edits); rerun them"
            )
        before = f"; the base answered '{r['before']}'" if r["before"] is not None else ""
        explanation = f"wanted '{r['expected']}' ({WHY[r['probe']]}), got '{r['answer']}'{before}"
        out.append(Transcript(
            id=_sample_id(r), user=r["prompt"], output=r["answer"],
            scores={"as_expected": Verdict(value=r["answer"] == r["expected"], answer=r["answer"],
                                           explanation=explanation)},
            metadata={k: r[k] for k in ("setting", "edit", "subject", "seed", "probe", "fact", "template",
                                        "expected", "before")},
        ))
    return out
