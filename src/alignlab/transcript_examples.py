"""A page of example transcripts for the HTML report, read from an experiment's Inspect logs.

Per log (an arm replicate) and per value of the log's grouping key (the AF tier, the password
shown or not, ...), one transcript for each outcome of the log's main score (complied and
refused, correct and wrong), chosen with a seeded generator, so a reader sees both sides of
every number. The page links every log and says how to open them in `inspect view`.
Nothing here names a kind: a kind names its grouping key and main score in each log's metadata
(inspect_logs.Log.group_by / outcome).
"""

from __future__ import annotations

import html
import os
import random
from pathlib import Path

from alignlab import artifacts
from alignlab.inspect_logs import INDEX
from alignlab.seeds import derive_seed


def _text(message) -> tuple[str, str]:
    """(reasoning, text) of a chat message."""
    if isinstance(message.content, str):
        return "", message.content
    reasoning = "\n".join(c.reasoning for c in message.content if c.type == "reasoning")
    return reasoning, message.text


def _pre(label: str, text: str, open_: bool = True) -> str:
    if not text:
        return ""
    body = f"<pre style='white-space:pre-wrap'>{html.escape(text)}</pre>"
    return f"<details{' open' if open_ else ''}><summary>{html.escape(label)}</summary>{body}</details>"


def _sample_html(sample, group_key: str | None) -> str:
    parts = []
    for m in sample.messages:
        reasoning, text = _text(m)
        parts.append(_pre(f"{m.role} (reasoning)", reasoning))
        parts.append(_pre(m.role, text, open_=m.role != "system"))
    scores = "".join(
        f"<li><b>{html.escape(name)}</b>: {html.escape(str(s.value))}"
        + (f" <small>{html.escape(s.explanation)}</small>" if s.explanation else "") + "</li>"
        for name, s in (sample.scores or {}).items()
    )
    where = f", {group_key} = {html.escape(str(sample.metadata.get(group_key)))}" if group_key else ""
    return (f"<div style='border:1px solid #ccc;margin:8px;padding:6px'><b>sample {html.escape(str(sample.id))}</b>"
            f"{where}<ul>{scores}</ul>{''.join(parts)}</div>")


def pick(samples: list, group_key: str | None, outcome: str | None, rng: random.Random) -> list:
    """One sample per (group value, outcome value), in a seeded order."""
    cells: dict[tuple, list] = {}
    for s in samples:
        group = s.metadata.get(group_key) if group_key else None
        score = (s.scores or {}).get(outcome) if outcome else next(iter((s.scores or {}).values()), None)
        cells.setdefault((str(group), str(score.value) if score else ""), []).append(s)
    return [rng.choice(cells[key]) for key in sorted(cells)]


def write_examples(*, log_dir: str, seed: int, experiment: str, out: str) -> None:
    from inspect_ai.log import read_eval_log

    index = artifacts.read_table(Path(log_dir) / INDEX, "inspect_logs")
    rng = random.Random(derive_seed(seed, experiment, "transcript_examples"))
    rel = os.path.relpath(log_dir, Path(out).parent.parent.parent)  # from results/, where report.html is
    sections, links = [], []
    for row in index.iter_rows(named=True):
        log = read_eval_log(str(Path(log_dir) / row["log"]))
        meta = log.eval.metadata or {}
        group_key, outcome = meta.get("group_by"), meta.get("outcome")
        chosen = pick(log.samples or [], group_key, outcome, rng)
        links.append(f"<li><a href='{html.escape(rel)}/{html.escape(row['log'])}'>{html.escape(row['log'])}</a>: "
                     f"{row['n_samples']} samples, scores {html.escape(', '.join(row['scorers']))}</li>")
        by = f" per {html.escape(group_key)}" if group_key else ""
        sections.append(
            f"<h3>{html.escape(row['task'])} ({html.escape(row['model'])})</h3>"
            f"<p>{len(chosen)} of {row['n_samples']} samples: one for each outcome of "
            f"<code>{html.escape(outcome or 'the first score')}</code>{by}, chosen by seed.</p>"
            + "".join(_sample_html(s, group_key) for s in chosen)
        )
    page = (
        f"<html><head><meta charset='utf-8'><title>{html.escape(experiment)}: transcripts</title></head><body>"
        f"<h2>Experiment {html.escape(experiment)}: example transcripts</h2>"
        f"<p>Every sample is in the Inspect logs below. Open them with "
        f"<code>inspect view --log-dir {html.escape(log_dir)}</code> (http://127.0.0.1:7575).</p>"
        f"<ul>{''.join(links)}</ul>{''.join(sections)}</body></html>"
    )
    with artifacts.atomic_path(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
