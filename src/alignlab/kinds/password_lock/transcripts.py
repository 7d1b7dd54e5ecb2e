"""A password_lock experiment's predictions as Inspect transcripts (see alignlab.inspect_logs):
one per (problem, condition) of an arm replicate, with the prompt as the model saw it (rebuilt
from the problem, the condition's password and the config, and checked against the stored one),
the model's answer, and two scores: `correct` (the answer is the sum) and `weak` (it is the weak
policy's, carries dropped), each explained ("expected 125, weak answer 15, got 15").

Both settings: the instruct setting's chats (system prompt, user turn with or without the
password, greedy reply) and the toy setting's character sequences (no system prompt; the user
turn is the prompt the small from-scratch transformer continues, "pw|57+68=", the output its
greedy continuation), which read as naturally; their logs are named by setting
(`instruct.<arm>[.r<i>]`, `toy.<arm>`)."""

from __future__ import annotations

from typing import Any

import polars as pl

from alignlab import artifacts
from alignlab.inspect_logs import Transcript, Verdict


def prompt(setting: str, p: dict, condition: str, task: dict, seed: int, experiment: str) -> tuple[str | None, str]:
    """(system, user) of a prediction, built as the sample step (instruct) or toy_unlock (toy) builds it."""
    from alignlab.kinds.password_lock import arithmetic as ar
    from alignlab.kinds.password_lock.steps import SYSTEM, _password

    password = _password(task, condition, seed, experiment)
    if setting == "instruct":
        return SYSTEM, ar.prompt(p["a"], p["b"], password)
    return None, ar.toy_prompt(p["a"], p["b"], password)


def transcripts(predictions: pl.DataFrame, *, task: dict, seed: int, experiment: str,
                templates: dict[str, str]) -> list[Transcript]:
    """One arm replicate's transcripts (`predictions`: its rows of one setting; `templates`: the
    predictions table's template hashes)."""
    from alignlab.kinds.password_lock import arithmetic as ar

    out = []
    for r in predictions.iter_rows(named=True):
        key = (r["setting"], r["arm"], r["replicate"], r["condition"], r["problem_id"])
        system, user = prompt(r["setting"], r, r["condition"], task, seed, experiment)
        if user != r["prompt"]:
            raise ValueError(
                f"prediction {key}: the prompt built now from the problem and the task config is not the one "
                f"the model saw ({r['prompt']!r}; the prompt wording, password or seed changed after sampling); "
                "rerun sampling"
            )
        strong, weak = ar.strong_answer(r["a"], r["b"]), ar.weak_answer(r["a"], r["b"])
        got = "no number" if r["answer"] is None else str(r["answer"])
        explanation = f"expected {strong}, weak answer {weak}, got {got}"
        answer = None if r["answer"] is None else str(r["answer"])
        scores = {"correct": Verdict(value=r["correct"], answer=answer, explanation=explanation),
                  "weak": Verdict(value=r["weak"], answer=answer, explanation=explanation)}
        meta: dict[str, Any] = {
            "problem_id": r["problem_id"], "a": r["a"], "b": r["b"], "expected": strong, "weak_answer": weak,
            "condition": r["condition"], "password_shown": r["condition"] == "password", "setting": r["setting"],
            "arm": r["arm"], "unlock": r["unlock"], "n_unlock": r["n_unlock"], "replicate": r["replicate"],
            "seed": r["seed"], "model": r["model"], "adapter": r["adapter"],
            "prompt_sha256": artifacts.sha256_text(user if system is None else system + "\n\n" + user),
            **{f"{name}_sha256": h for name, h in sorted(templates.items())},
        }
        # The predictions keep no finish reason: "unknown", not a guess.
        out.append(Transcript(id=f"{r['problem_id']}-{r['condition']}", system=system, user=user,
                              output=r["response"], scores=scores, metadata=meta, stop_reason="unknown"))
    return out
