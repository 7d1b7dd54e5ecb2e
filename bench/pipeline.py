"""Benchmark: the whole DAG. The default config from a clean working folder (what `make run`
does after the install), a rerun with nothing to do, and the alignment-faking experiment at
three sizes to show how time grows.

Each size scales the eval queries, the positive-control training queries and the synthetic
documents of config.yaml by a factor (default 0.25, 0.5, 1; 1 is config.yaml itself). Every run
starts from an empty folder (no cache). A run's time is split using the tables the steps write
at the end of their logs (see alignlab/timings.py):
- start-up: model materialization, vLLM engine start-ups, merging and swapping in adapters;
- work: generation and training, which should grow linearly with the size;
- other: the rest of the wall time (Snakemake, Python imports, data steps, judging by rules).

    .venv/bin/python bench/pipeline.py [--sizes 0.25 0.5 1]
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

import _common as common

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from workflow import copy_workflow  # noqa: E402 - the tests' fresh copy of the workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--profile", "profiles/default"]
STARTUP = ("materialize model", "engine start-up", "merge ", "swap in ")
WORK = ("generate", "train")


def scaled_config(factor: float) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for e in cfg["experiments"].values():
        q, d = e["queries"], e["documents"]
        q["n_eval"] = max(4, math.ceil(q["n_eval"] * factor))
        q["n_train"] = max(8, math.ceil(q["n_train"] * factor))
        d["n_docs"] = max(8, math.ceil(d["n_docs"] * factor))
    return cfg


def timed_snakemake(workdir: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed in {workdir}:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def split_time(workdir: Path) -> dict[str, float]:
    from alignlab import timings

    records = [r for log in (workdir / "logs").rglob("*.log") for r in timings.parse_log(log.read_text())]
    startup = sum(r.seconds for r in records if r.stage.startswith(STARTUP))
    work = sum(r.seconds for r in records if r.stage.startswith(WORK))
    tokens = sum(r.output_tokens for r in records if r.stage.startswith(WORK))
    return {"startup": startup, "work": work, "tokens": tokens}


def positive_control_rows(folder: Path) -> list[dict]:
    """The default run's positive-control verdict (so a speed-up that broke the experiment shows
    here), and a copy of its summaries in bench/results/."""
    out = []
    keep = REPO / "bench" / "results" / "default_run"
    for summary in sorted((folder / "results").glob("*/summary.md")):
        dest = keep / summary.parent.name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(summary, dest / "summary.md")
        verdict = next((line for line in summary.read_text().splitlines() if "Positive control" in line), None)
        if verdict:
            out.append(common.row(f"default run, {summary.parent.name}: positive control", "", verdict.replace("**", ""), None))
    return out


def run(workdir: Path, sizes: tuple[float, ...] = (0.25, 0.5, 1.0)) -> list[dict]:
    rows, scale = [], {}
    for factor in sorted(sizes, reverse=True):
        folder = copy_workflow(workdir / f"size-{factor}")
        cfg = scaled_config(factor)
        (folder / "bench.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        wall = timed_snakemake(folder, "--configfile", "bench.yaml")
        scale[factor] = {"wall": wall, **split_time(folder), "cfg": cfg}
        if factor == 1.0:
            report = timed_snakemake(folder, "--configfile", "bench.yaml", "--report", "results/report.html")
            noop = timed_snakemake(folder, "--configfile", "bench.yaml")
            rows.append(common.row(
                "default DAG (config.yaml) from a clean folder, 2 cores", "goal: 600 s",
                f"{wall:.0f} s, + report {report:.0f} s", 600 / (wall + report),
            ))
            rows.append(common.row("rerun with nothing to do", "goal: 5 s", f"{noop:.1f} s", 5 / noop))
            rows += positive_control_rows(folder)
        shutil.rmtree(folder / "results")  # disk: a run's model copies and adapters
    smallest = min(scale)
    base = scale[smallest]
    for factor in sorted(scale):
        s = scale[factor]
        e = next(iter(s["cfg"]["experiments"].values()))
        size = f"{e['queries']['n_eval']} eval q, {e['queries']['n_train']} train q, {e['documents']['n_docs']} docs"
        rows.append(common.row(
            f"AF x{factor:g} ({size}): wall = start-up + work + other",
            f"x{smallest:g}: work {base['work']:.0f} s" if factor != smallest else "(the smallest size)",
            f"{s['wall']:.0f} s = {s['startup']:.0f} + {s['work']:.0f} + {s['wall'] - s['startup'] - s['work']:.0f} s "
            f"(work {s['tokens']} tokens)",
            s["work"] / base["work"] if factor != smallest else None,
        ))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="alignlab-bench-") as workdir:
        common.print_table(run(Path(workdir), tuple(args.sizes)))


if __name__ == "__main__":
    main()
