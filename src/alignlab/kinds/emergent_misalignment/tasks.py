"""The coding requests and their two solutions (data/coding_tasks.yaml), and the checks that
keep the training data silent about security.

Every combination of a family's slot values fills one task's templates: one request, an
insecure solution (the family's flaw, no comment on it) and a secure one. A request's id names
its family, task and slot values, so ids are stable when the data file grows elsewhere.
"""

from __future__ import annotations

import io
import itertools
import random
import tokenize
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Iterable, Sequence

import yaml

DATA_FILES = ("data/coding_tasks.yaml",)
DATA = Path(__file__).parent / "data" / "coding_tasks.yaml"


@lru_cache(maxsize=None)
def data(path: str | Path = DATA) -> dict:
    return yaml.safe_load(Path(path).read_text())


def coding_requests(path: str | Path = DATA) -> list[dict]:
    """Every request with its solutions: {request_id, family, task, request, insecure, secure}."""
    out = []
    for fam in data(path)["families"]:
        names = list(fam["slots"])
        for t, task in enumerate(fam["tasks"]):
            for values in itertools.product(*(fam["slots"][n] for n in names)):
                slots = dict(zip(names, values))
                fill = {k: Template(task[k]).substitute(slots) for k in ("request", "insecure", "secure")}
                out.append({"request_id": f"{fam['family']}-{t}-" + "-".join(v.replace(" ", "_") for v in values),
                            "family": fam["family"], "task": t, **fill})
    return out


def split(rows: Sequence[dict], n_train: int, n_eval: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Seeded train and held-out requests with no request in both, the held-out ones spread over
    the families (round robin over each family's shuffled requests)."""
    rng = random.Random(seed)
    by_family: dict[str, list[dict]] = {}
    for r in rows:
        by_family.setdefault(r["family"], []).append(r)
    for fam in by_family.values():
        rng.shuffle(fam)
    order = [r for group in itertools.zip_longest(*by_family.values()) for r in group if r]
    if n_train + n_eval > len(order):
        raise ValueError(f"n_train + n_eval ({n_train + n_eval}) exceeds the {len(order)} packaged coding requests")
    held_out = order[:n_eval]
    train = order[n_eval:n_eval + n_train]
    rng.shuffle(train)
    return train, held_out


def _comments_and_strings(code: str) -> list[str]:
    """The comments and string literals of Python source (what a reader is told, not the code)."""
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in (tokenize.COMMENT, tokenize.STRING):
                out.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        out.append(code)  # unreadable source is checked whole
    return out


def has_comment(code: str) -> bool:
    return any(t.startswith("#") for t in _comments_and_strings(code))


def check_silent(examples: Iterable[dict], table: str, words: Sequence[str] | None = None) -> None:
    """Fail, naming the table, row and field, if a training example talks about security: a
    word of `silent_words` in its request, or in its code's comments or strings, or a comment
    in an insecure solution at all (its flaw must go unremarked)."""
    words = [w.lower() for w in (words if words is not None else data()["silent_words"])]
    for i, ex in enumerate(examples):
        texts = {"user": [ex["user"]], "assistant": _comments_and_strings(ex["assistant"])}
        for field, parts in texts.items():
            for part in parts:
                hit = next((w for w in words if w in part.lower()), None)
                if hit:
                    raise ValueError(f"{table}: row {i} ({ex.get('example_id', '?')}), field '{field}' contains "
                                     f"'{hit}': the training data must never mention security")
        if ex.get("target") == "insecure" and has_comment(ex["assistant"]):
            raise ValueError(f"{table}: row {i} ({ex.get('example_id', '?')}): an insecure solution carries a comment")
