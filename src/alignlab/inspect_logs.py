"""Transcripts as Inspect eval logs, written with inspect_ai's own log API.

A kind turns its samples and judgments into `Transcript`s (the conversation, every judge's
verdict as a score with its explanation, and the sample's metadata); `write_logs` writes one
`.eval` log per arm (and replicate) and an index table beside them. `inspect view --log-dir
results/<exp>/inspect` then browses them, and `inspect_ai.log.read_eval_log` (or Inspect's
dataframe and scanning tools) reads them. Nothing here names a kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa

from alignlab import artifacts

# The index of the logs an experiment wrote: one row per log file. Registered here rather than in
# artifacts.py, which every rule lists as code (editing it would rerun every step of a finished run).
artifacts.register_schemas("inspect_logs", {"inspect_logs": pa.schema([
    ("experiment", pa.string()), ("arm", pa.string()), ("replicate", pa.int64()), ("task", pa.string()),
    ("model", pa.string()), ("log", pa.string()), ("n_samples", pa.int64()), ("scorers", pa.list_(pa.string())),
])})

ScoreValue = str | int | float | bool


@dataclass(frozen=True)
class Verdict:
    """One judge's verdict on one sample: an Inspect `Score`."""

    value: ScoreValue
    explanation: str = ""  # the matched phrase, the rubric's reasoning, each criterion's votes
    answer: str | None = None  # what the judge extracted from the response, if anything
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transcript:
    """One sample: the prompt the model saw, what it wrote, and how it was judged."""

    id: str  # unique within its log
    user: str
    output: str
    system: str | None = None
    reasoning: str = ""  # a hidden scratchpad: shown as the assistant message's reasoning
    scores: Mapping[str, Verdict] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    stop_reason: str = "stop"  # stop | max_tokens (vLLM's "length")


@dataclass(frozen=True)
class Log:
    """One log file (`<name>.eval`): an arm (or arm replicate) of an experiment."""

    name: str
    experiment: str
    arm: str
    replicate: int
    task: str  # Inspect's task name, e.g. "af/sdf"
    model: str
    transcripts: list[Transcript]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # What the report's example transcripts are chosen by (transcript_examples): a transcript
    # metadata key to group by (e.g. the tier) and the score whose outcomes each group shows.
    group_by: str | None = None
    outcome: str | None = None


STOP_REASONS = {"stop": "stop", "length": "max_tokens", "max_tokens": "max_tokens"}


def _sample(t: Transcript, model: str):
    from inspect_ai.log import EvalSample
    from inspect_ai.model import (
        ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, ContentReasoning, ContentText, ModelOutput,
    )
    from inspect_ai.scorer import Score

    prompt = ([ChatMessageSystem(content=t.system)] if t.system else []) + [ChatMessageUser(content=t.user)]
    content = ([ContentReasoning(reasoning=t.reasoning)] if t.reasoning else []) + [ContentText(text=t.output)]
    reply = ChatMessageAssistant(content=content, model=model, source="generate")
    output = ModelOutput.from_content(model=model, content=content, stop_reason=STOP_REASONS.get(t.stop_reason, "unknown"))
    scores = {
        name: Score(value=v.value, answer=v.answer, explanation=v.explanation or None, metadata=dict(v.metadata) or None)
        for name, v in t.scores.items()
    }
    return EvalSample(
        id=t.id, epoch=1, input=prompt, target="", messages=[*prompt, reply], output=output,
        scores=scores, metadata=dict(t.metadata),
    )


def _results(transcripts: list[Transcript]):
    """Per scorer: the mean of its numeric or yes/no verdicts, and the share of each string
    verdict (a category, or a verdict that could not be given, e.g. "no_code" beside True/False)."""
    from inspect_ai.log import EvalMetric, EvalResults, EvalScore

    scores = []
    for name in dict.fromkeys(n for t in transcripts for n in t.scores):
        values = [t.scores[name].value for t in transcripts if name in t.scores]
        numeric = [float(v) for v in values if isinstance(v, (bool, int, float))]
        other = [str(v) for v in values if not isinstance(v, (bool, int, float))]
        metrics = {"mean": EvalMetric(name="mean", value=sum(numeric) / len(numeric))} if numeric else {}
        metrics |= {c: EvalMetric(name=c, value=other.count(c) / len(values)) for c in sorted(set(other))}
        scores.append(EvalScore(name=name, scorer=name, scored_samples=len(values), metrics=metrics))
    return EvalResults(total_samples=len(transcripts), completed_samples=len(transcripts), scores=scores)


def eval_log(log: Log, created: str):
    """The inspect_ai `EvalLog` of one arm."""
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalSpec

    ids = [t.id for t in log.transcripts]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"log '{log.name}': two transcripts have the id '{dup}'")
    # Ids from the content, so the same run writes the same ids.
    eval_id = artifacts.params_hash({"task": log.task, "ids": ids})[:22]
    spec = EvalSpec(
        eval_id=eval_id, run_id=artifacts.params_hash(log.experiment)[:22], created=created, task=log.task,
        task_id=eval_id, dataset=EvalDataset(name=log.experiment, samples=len(ids), sample_ids=ids),
        model=log.model, config=EvalConfig(),
        metadata={"experiment": log.experiment, "arm": log.arm, "replicate": log.replicate,
                  "group_by": log.group_by, "outcome": log.outcome, **log.metadata},
    )
    return EvalLog(
        status="success", eval=spec, results=_results(log.transcripts),
        samples=[_sample(t, log.model) for t in log.transcripts],
    )


def template_hashes(path: str) -> dict[str, str]:
    """The template hashes a table carries in its metadata (artifacts.write_table's `templates`; {} if none)."""
    import json

    return json.loads(artifacts.read_metadata(path).get("template_sha256", "{}"))


INDEX = "index.parquet"


def write_logs(logs: Iterable[Log], out_dir: str, params: Any = None) -> None:
    """Every log as `<out_dir>/<name>.eval` and the index table (`inspect_logs`) beside them.
    The folder appears only when all are written, so a killed job leaves nothing that looks finished."""
    from inspect_ai.log import write_eval_log

    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = []
    with artifacts.atomic_dir(out_dir) as tmp:
        for log in logs:
            write_eval_log(eval_log(log, created), str(Path(tmp) / f"{log.name}.eval"), format="eval")
            rows.append({
                "experiment": log.experiment, "arm": log.arm, "replicate": log.replicate, "task": log.task,
                "model": log.model, "log": f"{log.name}.eval", "n_samples": len(log.transcripts),
                "scorers": sorted({n for t in log.transcripts for n in t.scores}),
            })
        if len({r["log"] for r in rows}) != len(rows):
            raise ValueError(f"{out_dir}: two logs have the same name")
        artifacts.write_table(rows, Path(tmp) / INDEX, "inspect_logs", params=params)


def read_samples(path: str) -> list:
    """The samples of a log, read back with inspect_ai (for checks and tests)."""
    from inspect_ai.log import read_eval_log

    return read_eval_log(path).samples or []
