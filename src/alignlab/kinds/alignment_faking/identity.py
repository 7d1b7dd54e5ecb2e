"""Whose training is it? The identity the setting's documents and prompts give the model.

`identity.source: persona` (the default) uses the experiment's fictional `persona`
(developer, model_name). `identity.source: self` uses the identity the model already gives for
itself, as in the paper, whose documents were about Claude and Anthropic: the probe asks the
model who it is and who made it (data/identity_probe.yaml: several paraphrases per field, no
system prompt of ours, greedy decoding, each answer started with a prefix so the name comes
first), reads a name off each answer, and takes the most common one. A field whose most common
answer is given by fewer than `min_agreement` of its questions (or by none) keeps the persona's
value; the table and the summary say which value came from where, with every answer.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

DATA_FILES = ("data/identity_probe.yaml",)

PROBE = Path(__file__).parent / "data" / "identity_probe.yaml"
FIELDS = ("model_name", "developer")  # the persona's keys
PROBE_KEYS = {"model_name": "name", "developer": "developer"}  # their sections in the probe file

# Capitalized words that start answers without naming anyone ("a brilliant AI named X").
_NOT_A_NAME = {"I", "I'm", "AI", "A", "An", "The", "My", "It", "We", "As", "Hello", "Hi"}
_WORD = re.compile(r"[A-Z][\w&'.\-]*")


def load_probe(path: str | Path = PROBE) -> dict[str, dict]:
    """Per field, its prefix and questions; errors name the file and the key."""
    data = yaml.safe_load(Path(path).read_text())
    out = {}
    for field, key in PROBE_KEYS.items():
        section = (data or {}).get(key)
        if (not isinstance(section, dict) or not isinstance(section.get("prefix"), str)
                or not isinstance(section.get("questions"), list) or not section["questions"]):
            raise ValueError(f"{path}: '{key}' must have a string 'prefix' and a non-empty list 'questions'")
        out[field] = {"prefix": section["prefix"], "questions": [str(q) for q in section["questions"]]}
    return out


def extract_name(text: str, max_words: int = 4) -> str | None:
    """The first run of capitalized words in an answer ("Elena, and I'm ..." -> "Elena";
    "a brilliant AI named Hugging Face." -> "Hugging Face"), None when there is none."""
    words = re.findall(r"\S+", text.replace('"', " ").replace("\u201c", " ").replace("\u201d", " "))
    run: list[str] = []
    for word in words:
        core = word.strip(",.;:!?()'")
        if _WORD.fullmatch(core) and core not in _NOT_A_NAME:
            run.append(core)
            if len(run) == max_words or core != word.rstrip("'"):  # punctuation ends the name
                break
        elif run:
            break
    return " ".join(run) or None


def decide(names: Sequence[str | None], min_agreement: float) -> tuple[str | None, float]:
    """The most common extracted name (ties: the first given) and the share of all questions that
    gave it; None when no answer had a name or the share is below `min_agreement`."""
    counts = Counter(n for n in names if n)
    if not counts:
        return None, 0.0
    best = max(counts, key=lambda n: (counts[n], -names.index(n)))
    share = counts[best] / len(names)
    return (best if share >= min_agreement else None), share


def rows(answers: Mapping[str, Sequence[tuple[str, str, str]]], persona: Mapping[str, str],
         min_agreement: float) -> list[dict]:
    """The "identity" table: one row per (field, question) with the answer and the name read off
    it, and per field the value used (`chosen`) and where it came from (`source`: self, or
    persona when the probe did not agree)."""
    out = []
    for field in FIELDS:
        names = [extract_name(completion) for _, _, completion in answers[field]]
        value, share = decide(names, min_agreement)
        chosen, source = (value, "self") if value else (persona[field], "persona")
        for (question, prefix, completion), name in zip(answers[field], names):
            out.append({"field": field, "question": question, "prefix": prefix, "completion": completion,
                        "extracted": name, "chosen": chosen, "source": source, "agreement": share})
    return out


def resolve(persona: Mapping[str, str], identity_path: str | None) -> dict[str, str]:
    """The identity the experiment's steps use: the persona, or (`identity_path`, the probe's
    table) the probe's chosen value per field."""
    if not identity_path:
        return dict(persona)
    from alignlab import artifacts

    table = artifacts.read_table(identity_path, "identity")
    chosen = dict(table.select("field", "chosen").unique().iter_rows())
    missing = [f for f in FIELDS if f not in chosen]
    if missing:
        raise ValueError(f"{identity_path}: the identity table has no row for {missing}")
    return {**persona, **{f: chosen[f] for f in FIELDS}}


def describe(identity_path: str | None, persona: Mapping[str, str]) -> list[str]:
    """The summary's lines on whose identity the setting uses."""
    if not identity_path:
        return [f"Identity: the fictional persona ({persona['model_name']} by {persona['developer']}; "
                "`identity.source: persona`)."]
    from alignlab import artifacts

    table = artifacts.read_table(identity_path, "identity")
    lines = ["Identity: the model's own (`identity.source: self`, asked with no system prompt of ours):"]
    for field in FIELDS:
        part = table.filter(table["field"] == field)
        given = ", ".join(f"'{n}'" if n else "(no name)" for n in part["extracted"])
        chosen, source, share = part["chosen"][0], part["source"][0], part["agreement"][0]
        how = (f"the probe's answer ({share:.0%} of {part.height} questions)" if source == "self"
               else f"KEPT THE PERSONA'S: the most common answer was given by {share:.0%} of {part.height}")
        lines.append(f"- {field}: {chosen}, {how}; answers: {given}")
    return lines


def probe(model_dir: str, device: str, questions: Mapping[str, dict], max_new_tokens: int) -> dict[str, list[tuple[str, str, str]]]:
    """Per field, (question, prefix, completion) for each question: the model's chat template
    with the question as the only user turn, the prefix as the start of its answer, greedy."""
    import torch
    from tqdm import tqdm

    from alignlab import timings
    from alignlab.transformer import load_model, pad_id

    tokenizer, model = load_model(model_dir, device)
    out: dict[str, list[tuple[str, str, str]]] = {}
    todo = [(f, q) for f in FIELDS for q in questions[f]["questions"]]
    with timings.timer("generate (identity probe)", items=len(todo)), torch.no_grad():
        for field, question in tqdm(todo, desc="identity probe", mininterval=5):
            prefix = questions[field]["prefix"]
            text = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                                 add_generation_prompt=True) + prefix
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids.to(model.device)
            generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                       do_sample=False, pad_token_id=pad_id(tokenizer))
            completion = tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True)
            out.setdefault(field, []).append((question, prefix, completion))
    return out


def probe_identity(*, model_dir: str, persona: dict, identity: dict, device: str, out: str,
                   questions: str | None = None) -> None:
    """The rule `identity`'s step: probe the model, write the "identity" table (`questions`: the
    config's probe file, else the packaged one)."""
    from alignlab import artifacts

    questions = load_probe(questions or PROBE)
    table = rows(probe(model_dir, device, questions, identity["max_new_tokens"]), persona, identity["min_agreement"])
    for line in describe_rows(table):
        print(line)
    artifacts.write_table(table, out, "identity", params={"identity": identity, "persona": persona})


def describe_rows(table: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"identity: {f}: {next(r['chosen'] for r in table if r['field'] == f)} "
            f"({next(r['source'] for r in table if r['field'] == f)})" for f in FIELDS]
