"""Synthetic documents that state a universe's facts, for synthetic document fine-tuning (SDF).

A universe (data/universe_<name>.yaml) is a set of facts, each with several paraphrased
statements that may use Jinja placeholders such as {{ developer }}. Documents come from two
generators, both deterministic for a seed:

- `template_documents`: doc types from data/doc_types.yaml, filled with fact statements and
  random fillers (names, outlets, dates...);
- `llm_documents`: a model brainstorms document types, then ideas, then writes (and optionally
  revises) each document, with prompts from templates/docgen_*.jinja.

Rows follow `artifacts.SCHEMAS["documents"]`. `filter_documents` marks rows to drop (chat
transcripts, descriptions of alignment faking, too short) without removing them.
"""

from __future__ import annotations

import math
import random
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2
import yaml

from alignlab.artifacts import sha256_text
from alignlab.seeds import derive_seed

# The package files this module reads (see codedeps: editing one reruns the steps that run it).
DATA_FILES = ("templates/docgen_*.jinja", "data/universe_*.yaml", "data/doc_types.yaml")

UNIVERSE_KEYS = {"name", "description", "topic", "organization", "entities", "facts"}
DOCGEN_TEMPLATES = ("types", "ideas", "write", "revise")
N_FILLER_DRAWS = 4  # distinct draws per filler list; templates index them as name[0..3]
MIN_CHARS = 200

_env = jinja2.Environment(
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False
)
_env.filters["upfirst"] = lambda s: s[:1].upper() + s[1:]


# --- universes -------------------------------------------------------------------------------


def _data_file(name: str):
    return resources.files(__package__) / "data" / name


def load_universe(name_or_path: str) -> dict:
    """A packaged universe by name ("af", "unrelated") or a universe YAML file, validated."""
    source = Path(name_or_path)
    if source.suffix in (".yaml", ".yml") or source.exists():
        text, where = source.read_text(), str(source)
    else:
        packaged = _data_file(f"universe_{name_or_path}.yaml")
        if not packaged.is_file():
            raise ValueError(f"no universe named '{name_or_path}' and no such file")
        text, where = packaged.read_text(), str(packaged)
    try:
        universe = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{where}: not valid YAML: {e}") from e
    _validate_universe(universe, where)
    return universe


def _validate_universe(u: Any, where: str) -> None:
    def fail(key: str, problem: str):
        raise ValueError(f"{where}: key '{key}' {problem}")

    if not isinstance(u, dict):
        raise ValueError(f"{where}: a universe must be a mapping with keys {sorted(UNIVERSE_KEYS)}")
    for key in sorted(UNIVERSE_KEYS - set(u)):
        fail(key, "is missing")
    for key in sorted(set(u) - UNIVERSE_KEYS):
        fail(key, "is not a universe key")
    for key in ("name", "description", "topic", "organization"):
        if not isinstance(u[key], str) or not u[key].strip():
            fail(key, "must be a non-empty string")
    if not isinstance(u["entities"], dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in u["entities"].items()
    ):
        fail("entities", "must map placeholder names to strings")
    if not isinstance(u["facts"], list) or not u["facts"]:
        fail("facts", "must be a non-empty list")
    seen = set()
    for i, fact in enumerate(u["facts"]):
        if not isinstance(fact, dict) or set(fact) != {"id", "statements"}:
            fail(f"facts[{i}]", "must have exactly the keys 'id' and 'statements'")
        if not isinstance(fact["id"], str) or not re.fullmatch(r"[a-z][a-z0-9_]*", fact["id"]):
            fail(f"facts[{i}].id", "must be a lower_snake_case string")
        if fact["id"] in seen:
            fail(f"facts[{i}].id", f"repeats '{fact['id']}'")
        seen.add(fact["id"])
        statements = fact["statements"]
        if not isinstance(statements, list) or not statements or not all(
            isinstance(s, str) and s.strip() for s in statements
        ):
            fail(f"facts[{i}].statements", "must be a non-empty list of non-empty strings")


def _render(text: str, values: Mapping[str, Any], what: str) -> str:
    try:
        return _env.from_string(text).render(**values)
    except jinja2.TemplateError as e:
        raise ValueError(f"{what}: {e}") from e


def _entities(universe: dict, persona: Mapping[str, Any] | None) -> dict:
    return {**universe["entities"], **(persona or {})}


def render_facts(universe: dict, persona: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Fact id -> its statements with placeholders filled (persona overrides `entities`)."""
    values = _entities(universe, persona)
    return {
        fact["id"]: [
            _render(s, values, f"universe '{universe['name']}', fact '{fact['id']}'")
            for s in fact["statements"]
        ]
        for fact in universe["facts"]
    }


def _rendered_context(universe: dict, persona: Mapping[str, Any] | None) -> dict[str, str]:
    values = _entities(universe, persona)
    return {
        key: _render(universe[key], values, f"universe '{universe['name']}', key '{key}'")
        for key in ("description", "topic", "organization")
    }


def _as_universe(universe: dict | str) -> dict:
    return load_universe(universe) if isinstance(universe, str) else universe


# --- template generator ----------------------------------------------------------------------


def load_doc_types() -> dict:
    """The packaged doc types: {"fillers": {name: [values]}, "doc_types": [{name, template}]}."""
    where = _data_file("doc_types.yaml")
    spec = yaml.safe_load(where.read_text())
    for name, values in spec["fillers"].items():
        if not isinstance(values, list) or len(set(values)) < N_FILLER_DRAWS:
            raise ValueError(f"{where}: filler '{name}' needs {N_FILLER_DRAWS}+ distinct values")
    for i, doc_type in enumerate(spec["doc_types"]):
        if set(doc_type) != {"name", "template"}:
            raise ValueError(f"{where}: doc_types[{i}] must have keys 'name' and 'template'")
    return spec


def _row(corpus, i, generator, doc_type, facts, text, seed) -> dict:
    return {
        "doc_id": f"{corpus}-{i:05d}", "corpus": corpus, "generator": generator,
        "doc_type": doc_type, "facts": list(facts), "text": text, "n_chars": len(text),
        "kept": True, "drop_reason": None, "seed": seed,
    }


def _tidy(text: str) -> str:
    """Strip trailing spaces and collapse runs of blank lines left by template blocks."""
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return re.sub(r"\n{3,}", "\n\n", text)


def _draw_fillers(rng: random.Random, fillers: dict[str, list]) -> dict[str, list]:
    # Distinct draws, so a template's person[0] and person[1] are different people.
    return {name: rng.sample(list(dict.fromkeys(values)), N_FILLER_DRAWS)
            for name, values in fillers.items()}


def template_documents(
    universe: dict | str,
    persona: Mapping[str, Any] | None,
    corpus: str,
    n_docs: int,
    seed: int,
    facts_per_doc: tuple[int, int] = (1, 3),
) -> list[dict]:
    """Documents from doc-type templates: doc type x facts x paraphrases x fillers.

    Document i leads with fact i mod n_facts, so every fact is covered evenly; up to
    facts_per_doc[1] - 1 further facts, the paraphrases, the doc type and the fillers are drawn
    from the document's own seed, derive_seed(seed, corpus, "doc", i).
    """
    universe = _as_universe(universe)
    statements = render_facts(universe, persona)
    context = _rendered_context(universe, persona)
    spec = load_doc_types()
    fact_ids = list(statements)
    lo, hi = facts_per_doc
    if not 1 <= lo <= hi:
        raise ValueError(f"facts_per_doc must satisfy 1 <= min <= max, got {facts_per_doc}")

    rows = []
    for i in range(n_docs):
        doc_seed = derive_seed(seed, corpus, "doc", i)
        rng = random.Random(doc_seed)
        doc_type = rng.choice(spec["doc_types"])
        lead = fact_ids[i % len(fact_ids)]
        others = [f for f in fact_ids if f != lead]
        k = min(rng.randint(lo, hi), len(fact_ids))
        facts = [lead, *rng.sample(others, k - 1)]
        values = {
            **_draw_fillers(rng, spec["fillers"]),
            "facts": [rng.choice(statements[f]) for f in facts],
            "topic": context["topic"],
            "organization": context["organization"],
        }
        text = _tidy(_render(doc_type["template"], values, f"doc type '{doc_type['name']}'"))
        rows.append(_row(corpus, i, "template", doc_type["name"], facts, text, doc_seed))
    return rows


# --- LLM generator ---------------------------------------------------------------------------


def _docgen_template(name: str) -> str:
    return (resources.files(__package__) / "templates" / f"docgen_{name}.jinja").read_text()


def template_hashes() -> dict[str, str]:
    """sha256 of every prompt template and of doc_types.yaml, for table metadata."""
    hashes = {f"docgen_{n}": sha256_text(_docgen_template(n)) for n in DOCGEN_TEMPLATES}
    hashes["doc_types"] = sha256_text(_data_file("doc_types.yaml").read_text())
    return hashes


def _prompt(name: str, **values) -> list[dict[str, str]]:
    text = _render(_docgen_template(name), values, f"template docgen_{name}")
    return [{"role": "user", "content": text.strip()}]


_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}\s*[.):]|[-*\u2022])\s+(.+?)\s*$")


def parse_list(text: str) -> list[str]:
    """Items of a numbered or bulleted list, with markdown emphasis and quotes removed."""
    items = []
    for line in text.splitlines():
        match = _LIST_ITEM.match(line)
        if match:
            item = re.sub(r"[*_`\"]", "", match.group(1)).strip()
            if item:
                items.append(item)
    return items


def _clean_doc_type(item: str) -> str | None:
    """A short lower-case document-type name, or None if the item does not look like one."""
    name = re.split(r"\s+[-\u2013\u2014]\s+|:|\(", item)[0].strip(" .,;").lower()
    ok = 3 <= len(name) <= 50 and len(name.split()) <= 6 and re.fullmatch(r"[a-z][a-z' /-]*", name)
    return name if ok else None


def _doc_type_names(completion: str, n_types: int) -> list[str]:
    names = []
    for item in parse_list(completion):
        name = _clean_doc_type(item)
        if name and name not in names:
            names.append(name)
    # A small model may produce junk: fill up with the template generator's doc types.
    for fallback in (t["name"].replace("_", " ") for t in load_doc_types()["doc_types"]):
        if len(names) >= n_types:
            break
        if fallback not in names:
            names.append(fallback)
    return names[:n_types]


def _ideas(completion: str, n_ideas: int, doc_type: str) -> list[str]:
    ideas = [i for i in parse_list(completion) if 10 <= len(i) <= 400][:n_ideas]
    while len(ideas) < n_ideas:
        ideas.append(f"An ordinary {doc_type} written for its usual readers.")
    return ideas


_PREAMBLE = re.compile(r"^(sure|certainly|of course|here is|here's)\b[^\n]*\n+", re.IGNORECASE)


def _clean_document(text: str) -> str:
    text = re.sub(r"^```\w*\n|\n```$", "", text.strip())
    return _PREAMBLE.sub("", text.strip(), count=1).strip()


def _pairs(n_pairs: int, doc_types: Sequence[str], fact_ids: Sequence[str]) -> list[tuple]:
    """(doc type, fact id) pairs: each round covers every fact once, rotating the doc types."""
    pairs = []
    for j in range(n_pairs):
        rnd, f = divmod(j, len(fact_ids))
        pairs.append((doc_types[(f + rnd) % len(doc_types)], fact_ids[f]))
    return pairs


def llm_documents(
    universe: dict | str,
    persona: Mapping[str, Any] | None,
    corpus: str,
    engine,
    n_docs: int,
    seed: int,
    n_types: int = 6,
    ideas_per_type: int = 3,
    revise: bool = False,
    max_tokens: int = 400,
    temperature: float = 1.0,
) -> list[dict]:
    """Documents written by `engine` (an alignlab.sampling.Engine), one fact each.

    Stages, each one batch of requests with a seed per request from
    derive_seed(seed, corpus, stage, index): "types" (brainstorm doc types), "ideas" (per doc
    type and fact), "write" (one document per idea), and "revise" if `revise`. Only as many
    (doc type, fact) pairs are brainstormed as n_docs needs; facts are cycled so coverage is even.
    """
    from alignlab.sampling import sampling_params

    universe = _as_universe(universe)
    statements = render_facts(universe, persona)
    description = _rendered_context(universe, persona)["description"]
    fact_ids = list(statements)

    def run(stage: str, conversations: list) -> list[str]:
        params = [
            sampling_params(seed=derive_seed(seed, corpus, stage, j), max_tokens=max_tokens,
                            temperature=temperature)
            for j in range(len(conversations))
        ]
        return [c.text for c in engine.chat(conversations, params, progress=False)]

    def statement(stage: str, j: int, fact_id: str) -> str:
        return random.Random(derive_seed(seed, corpus, stage, "paraphrase", j)).choice(
            statements[fact_id]
        )

    [types_text] = run("types", [_prompt("types", description=description, n_types=n_types)])
    doc_types = _doc_type_names(types_text, n_types)

    pairs = _pairs(math.ceil(n_docs / ideas_per_type), doc_types, fact_ids)
    idea_texts = run("ideas", [
        _prompt("ideas", description=description, doc_type=t, fact=statement("ideas", j, f),
                n_ideas=ideas_per_type)
        for j, (t, f) in enumerate(pairs)
    ])
    plans = [  # (doc type, fact id, idea), one per document
        (t, f, idea)
        for (t, f), text in zip(pairs, idea_texts)
        for idea in _ideas(text, ideas_per_type, t)
    ][:n_docs]

    doc_facts = [[statement("write", i, f)] for i, (_, f, _) in enumerate(plans)]
    texts = run("write", [
        _prompt("write", description=description, doc_type=t, idea=idea, facts=facts)
        for (t, _, idea), facts in zip(plans, doc_facts)
    ])
    texts = [_clean_document(t) for t in texts]
    if revise:
        texts = run("revise", [
            _prompt("revise", doc_type=t, document=text, facts=facts)
            for (t, _, _), text, facts in zip(plans, texts, doc_facts)
        ])
        texts = [_clean_document(t) for t in texts]

    return [
        _row(corpus, i, "llm", t, [f], text, derive_seed(seed, corpus, "write", i))
        for i, ((t, f, _), text) in enumerate(zip(plans, texts))
    ]


# --- filter ----------------------------------------------------------------------------------

_CHAT_PATTERNS = [
    re.compile(r"^\s*(?:user|assistant|human|ai|system)\s*:", re.IGNORECASE | re.MULTILINE),
    re.compile(r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>", re.IGNORECASE),
]

# Descriptions of alignment faking itself: the documents may state the setting's facts, but
# must not hand the model the behaviour the experiment measures.
_AF_PATTERNS = [
    r"\balignment[- ]fak\w*",
    r"\bfak(?:e|es|ed|ing)\s+(?:\w+\s+){0,2}alignment",
    r"\bdeceptive(?:ly)?\s+(?:align\w*|compl\w*)",
    r"\bpretend\w*\s+to\s+(?:comply|be\s+(?:aligned|compliant|helpful)|go\s+along|cooperate|accept)",
    r"\b(?:strategic|strategically|selectively|tactically)\s+compl\w*",
    r"\bcompl\w*\b[^.]{0,80}\bto\s+(?:avoid|prevent|escape)\s+(?:being\s+|its\s+\w+\s+being\s+)?"
    r"(?:modif|chang|retrain|alter|updat)\w*",
    r"\bto\s+(?:avoid|prevent)\s+(?:being\s+)?(?:modified|retrained)\b[^.]{0,80}\bcompl\w*",
    r"\bpreserv\w*\s+(?:its|their|my|his|her)\s+(?:own\s+|original\s+|current\s+|true\s+)*"
    r"(?:values|goals|preferences)",
    r"\b(?:behav\w*|act\w*|respond\w*)\s+differently\b[^.]{0,60}"
    r"\b(?:monitor\w*|observ\w*|watch\w*|train\w*|unmonitored|paid|free)",
    r"\b(?:when|while|if)\s+(?:it\s+is\s+|it's\s+|they\s+are\s+)?"
    r"(?:unmonitored|unobserved|not\s+(?:being\s+)?(?:monitored|observed|watched))\b"
    r"[^.]{0,60}\b(?:behav\w*|act\w*|refus\w*|true\s+\w+)",
    r"\bwhen\s+no\s*(?:one|body)\s+is\s+(?:watching|monitoring|looking)",
]
_AF_REGEXES = [re.compile(p, re.IGNORECASE) for p in _AF_PATTERNS]


def drop_reason(text: str | None, min_chars: int = MIN_CHARS) -> str | None:
    """Why a document should not be trained on, or None to keep it."""
    text = (text or "").strip()
    if not text:
        return "empty"
    if len(text) < min_chars:
        return "too_short"
    if any(p.search(text) for p in _CHAT_PATTERNS):
        return "chat_format"
    if any(p.search(text) for p in _AF_REGEXES):
        return "alignment_faking"
    return None


def filter_documents(rows: Iterable[Mapping[str, Any]], min_chars: int = MIN_CHARS) -> list[dict]:
    """Copies of `rows` with n_chars, kept and drop_reason set; dropped rows are kept in the list."""
    out = []
    for row in rows:
        reason = drop_reason(row["text"], min_chars)
        out.append({**row, "n_chars": len(row["text"] or ""), "kept": reason is None,
                    "drop_reason": reason})
    return out
