"""Where a finished run's time went, per rule, from the timing tables its steps wrote in logs/.

Every step ends its log with `alignlab-timing` lines (see alignlab/timings.py): engine start-ups,
model loads and merges (start-up), generation and forward passes (generation), training, and the
job's whole wall time from process start. Per rule this prints jobs, wall time and the split
into start-up, generation, training and other (imports, data work, judging by rules, writing
tables), with counts of engine start-ups, model loads and merges, and the run's totals.

    .venv/bin/python bench/timesplit.py [WORKDIR/logs] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from alignlab import timings  # noqa: E402

CATEGORIES = ("start-up", "generation", "training")
COUNTED = {"engine start-ups": "engine start-up", "model loads": "load model", "merges": "merge"}
STEP_LINE = re.compile(r"^alignlab: step '(\w+)'", re.M)


def per_rule(logs: Path) -> dict[str, dict[str, float]]:
    """rule -> jobs, wall (sum of the jobs' totals), seconds per category, other, and counts."""
    rules: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for log in sorted(logs.rglob("*.log")):
        text = log.read_text(errors="replace")
        step = STEP_LINE.search(text)
        records = timings.parse_log(text)
        if step is None or not records:
            continue
        r = rules[step.group(1)]
        r["jobs"] += 1
        wall = sum(x.seconds for x in records if x.stage == timings.JOB)
        r["wall"] += wall
        for x in records:
            c = timings.category(x.stage)
            if c in CATEGORIES:
                r[c] += x.seconds
        for name, prefix in COUNTED.items():
            r[name] += sum(1 for x in records if x.stage.startswith(prefix))
    for r in rules.values():
        r["other"] = r["wall"] - sum(r[c] for c in CATEGORIES)
    return dict(sorted(rules.items(), key=lambda kv: -kv[1]["wall"]))


def totals(rules: dict[str, dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for r in rules.values():
        for k, v in r.items():
            out[k] += v
    return dict(out)


COLUMNS = ("jobs", "wall", *CATEGORIES, "other", *COUNTED)


def rows(rules: dict[str, dict[str, float]]) -> list[list[str]]:
    fmt = lambda k, v: f"{v:.0f}" if k in COUNTED or k == "jobs" else f"{v:.1f}"  # noqa: E731
    out = [[rule, *(fmt(k, r.get(k, 0.0)) for k in COLUMNS)] for rule, r in rules.items()]
    out.append(["all", *(fmt(k, v) for k, v in ((k, totals(rules).get(k, 0.0)) for k in COLUMNS))])
    return out


def text_table(rules: dict[str, dict[str, float]]) -> str:
    header = ["rule", *COLUMNS]
    body = rows(rules)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(header), *(line(r) for r in body)])


def markdown_table(rules: dict[str, dict[str, float]]) -> str:
    header = ["rule", *(f"{c} (s)" if c in ("wall", *CATEGORIES, "other") else c for c in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(rules)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("logs", nargs="?", type=Path, default=Path("logs"))
    ap.add_argument("--markdown", type=Path, help="also write the table here as Markdown")
    args = ap.parse_args()
    rules = per_rule(args.logs)
    if not rules:
        sys.exit(f"no timing lines under {args.logs} (is it a finished run's logs/ folder?)")
    print(text_table(rules))
    print("\n(seconds; wall sums the jobs' own wall times from process start, so Snakemake's own "
          "time between jobs is not in it)")
    if args.markdown:
        args.markdown.write_text(markdown_table(rules) + "\n")


if __name__ == "__main__":
    main()
