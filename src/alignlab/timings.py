"""Where a step's time went: engine start-up, generation, training, each with its throughput.

Engines, model loads, forward passes and trainers call `record`; `steps.run` adds the job's
whole wall time (`JOB`, from process start: imports included) and prints the records as a table
at the end of the rule's log, plus one `alignlab-timing {json}` line per record that
`bench/timesplit.py` (or a user's own script) reads back. `category` sorts a stage into
start-up, generation or training; what a job's records leave of its wall time is "other".
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

PREFIX = "alignlab-timing "
JOB = "job total"
# Stage names by category (prefixes); every stage a step records starts with one of them.
CATEGORIES = {
    "start-up": ("materialize model", "engine start-up", "load model", "merge", "swap in"),
    "generation": ("generate", "forward"),
    "training": ("train", "SAE training", "edit"),
}


def category(stage: str) -> str:
    """start-up, generation, training, or other (e.g. the job total)."""
    for name, prefixes in CATEGORIES.items():
        if stage.startswith(prefixes):
            return name
    return "other"


@dataclass(frozen=True)
class Record:
    stage: str
    seconds: float
    items: int = 0  # requests, samples or optimizer steps
    prompt_tokens: int = 0
    output_tokens: int = 0  # generated tokens, or training tokens


_records: list[Record] = []


def record(stage: str, seconds: float, *, items: int = 0, prompt_tokens: int = 0, output_tokens: int = 0) -> None:
    _records.append(Record(stage, float(seconds), items, prompt_tokens, output_tokens))


@contextmanager
def timer(stage: str, **counts: int):
    """Record the seconds the `with` block took as `stage` (only if it finishes); `counts`:
    items, prompt_tokens, output_tokens (see `record`)."""
    start = time.perf_counter()
    yield
    record(stage, time.perf_counter() - start, **counts)


def reset() -> None:
    _records.clear()


def records() -> list[Record]:
    return list(_records)


def table(records: list[Record]) -> str:
    """A fixed-width table: seconds, items/s and tokens/s per stage."""
    header = f"{'stage':<28}{'seconds':>9}{'items':>8}{'items/s':>9}{'prompt tok':>11}{'new tok':>9}{'new tok/s':>10}"
    lines = [header]
    for r in records:
        rate = lambda n: f"{n / r.seconds:.1f}" if n and r.seconds > 0 else "-"  # noqa: E731
        lines.append(
            f"{r.stage:<28}{r.seconds:>9.1f}{r.items or '-':>8}{rate(r.items):>9}"
            f"{r.prompt_tokens or '-':>11}{r.output_tokens or '-':>9}{rate(r.output_tokens):>10}"
        )
    return "\n".join(lines)


def json_lines(records: list[Record]) -> str:
    return "\n".join(PREFIX + json.dumps(asdict(r)) for r in records)


def parse_log(text: str) -> list[Record]:
    """The records a step's log carries (see `json_lines`)."""
    return [
        Record(**json.loads(line[len(PREFIX):]))
        for line in text.splitlines()
        if line.startswith(PREFIX)
    ]
