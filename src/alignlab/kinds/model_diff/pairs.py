"""What model_diff's rules compute from its config, per pair: the fine-tune's model folder, its
tables, and what the tables say it is (used by rules/model_diff.smk)."""

from __future__ import annotations

from typing import Any

from alignlab.paths import RESULTS, code, model_folder

TABLES = ("weights", "activations", "text_cosines", "sae", "features")


def tuned_folder(name: str, exp: Any, pair: str) -> str:
    """A pair's fine-tune as a model folder: a `models` key's folder, the adapter merged into
    the base, or a reference's size-matched random perturbation of the base."""
    if pair in exp.references:
        return f"{RESULTS}/{name}/references/{pair}"
    spec = exp.pairs[pair]
    return model_folder(spec.model) if spec.model is not None else f"{RESULTS}/{name}/merged/{pair}"


def table(name: str, pair: str, kind: str) -> str:
    return f"{RESULTS}/{name}/pairs/{pair}/{kind}.parquet"


def sources(exp: Any) -> dict[str, str]:
    """What each pair's fine-tune is, for the tables: the adapter folder, `model:<key>`, or for
    a reference `random like <pair>`; the pairs first, then the references."""
    out = {p: (s.adapter if s.adapter is not None else f"model:{s.model}") for p, s in exp.pairs.items()}
    return out | {r: f"random like {s.like}" for r, s in exp.references.items()}


def texts_inputs(exp: Any) -> dict:
    """The text-set step's inputs: its code, and the text files it reads, the source and the
    `exclude` tables (built first when another experiment writes them; a changed file reruns the
    step, as changed code does)."""
    files = code("kinds.model_diff.steps.make_texts")
    read = [exp.texts.path] if exp.texts.source == "file" else []
    return {"code": files + read + [ex.path for ex in exp.texts.exclude]}
