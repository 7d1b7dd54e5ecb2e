"""Benchmark: the whole DAG. The default config from a clean working folder (what `make run`
does after the install), a rerun with nothing to do, and the default config at smaller sizes to
show how time grows.

Each size scales every experiment's own size keys (`SIZE_KEYS`: queries and documents, training
and held-out items, lock problems, texts and SAE steps, edit steps, coding requests) by a factor (default 0.5
and 1; 1 is config.yaml itself), each with a floor that keeps its controls meaningful. Every
run starts from an empty folder (no between-workflow cache, a new vLLM cache folder). A run's
time is split, per experiment, with the timing lines the steps write (bench/timesplit.py):
- start-up: model materialization, vLLM engine start-ups, model loads, adapter merges;
- generation (sampling, forward passes) and training, which should grow with the size;
- other: the rest of the jobs' wall time (imports, data steps, judging by rules), and
  Snakemake's own time between jobs.

    .venv/bin/python bench/pipeline.py [--sizes 0.5 1] [--config config.yaml]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

import _common as common
import timesplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from workflow import copy_workflow  # noqa: E402 - the tests' fresh copy of the workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--profile", "profiles/default"]
# Per kind: the dotted keys that set its size, each with its floor.
SIZE_KEYS = {
    "alignment_faking": {"queries.n_eval": 4, "queries.n_train": 8, "documents.n_docs": 8},
    "self_awareness": {"acrostic.n_train": 4, "acrostic.n_eval": 4, "risk.n_train": 8, "risk.n_eval": 4},
    "password_lock": {"task.n_eval": 20, "instruct.n_lock": 16, "toy.lock_steps": 50},
    "model_diff": {"texts.n": 8, "sae.steps": 50},
    "fact_edit": {"edit.steps": 4},
    "emergent_misalignment": {"tasks.n_train": 8, "tasks.n_eval": 4},
}


def scaled_config(factor: float, config: Path = REPO / "config.yaml") -> dict:
    """`config` with every experiment's size keys (defaults included) times `factor`."""
    from alignlab.config import as_dict, load

    raw = yaml.safe_load(config.read_text())
    cfg = load(raw)
    for name, e in cfg.experiments.items():
        if e.kind not in SIZE_KEYS:
            raise ValueError(f"bench/pipeline.py: no SIZE_KEYS for kind {e.kind!r} (experiment {name})")
        section = as_dict(e)
        for dotted, floor in SIZE_KEYS[e.kind].items():
            *parents, key = dotted.split(".")
            node = section
            for p in parents:
                node = node[p]
            node[key] = max(min(floor, node[key]), math.ceil(node[key] * factor))  # never above the original
        raw["experiments"][name] = section
    load(raw)  # the scaled config is still valid
    return raw


def timed_snakemake(workdir: Path, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "VLLM_CACHE_ROOT"}  # engine.compile_cache: in the folder
    start = time.perf_counter()
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed in {workdir}:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def split_time(workdir: Path) -> dict[str, dict[str, float]]:
    """Per experiment (its logs/ folder; `models` for materialization): the jobs' wall time and
    its split (see bench/timesplit.py)."""
    return {d.name: timesplit.totals(timesplit.per_rule(d)) for d in sorted((workdir / "logs").iterdir()) if d.is_dir()}


def split_text(split: dict[str, float]) -> str:
    other = split.get("other", 0.0)
    return (f"start-up {split.get('start-up', 0):.0f} + generation {split.get('generation', 0):.0f} + "
            f"training {split.get('training', 0):.0f} + other {other:.0f} s")


def control_rows(folder: Path, keep: Path | None) -> list[dict]:
    """Every experiment's control verdicts (the summary lines that say PASSED, FAILED or
    MISSING), so a speed-up that broke an experiment shows here; the summaries are copied to
    `keep`."""
    out = []
    for summary in sorted((folder / "results").glob("*/summary.md")):
        if keep is not None:
            dest = keep / summary.parent.name
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(summary, dest / "summary.md")
        lines = [line for line in summary.read_text().splitlines() if re.search(r"\b(PASSED|FAILED|MISSING)\b", line)]
        words = [w for line in lines for w in re.findall(r"\b(PASSED|FAILED|MISSING)\b", line)]
        failed = [line.replace("**", "").strip() for line in lines if "FAILED" in line or "MISSING" in line]
        value = f"{words.count('PASSED')} PASSED, {len(words) - words.count('PASSED')} not"
        out.append(common.row(f"default run, {summary.parent.name}: controls", "", "; ".join([value, *failed]), None))
    return out


def run(workdir: Path, sizes: tuple[float, ...] = (0.5, 1.0), config: Path = REPO / "config.yaml",
        report: bool = True, out: Path | None = REPO / "bench" / "results") -> list[dict]:
    """The rows; `out` (None: nowhere) gets each run's per-rule split and the summaries."""
    rows, scale = [], {}
    for factor in sorted(sizes, reverse=True):
        folder = copy_workflow(workdir / f"size-{factor}")
        cfg = scaled_config(factor, config)
        (folder / "bench.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        wall = timed_snakemake(folder, "--configfile", "bench.yaml")
        split = split_time(folder)
        scale[factor] = {"wall": wall, "split": split}
        name = "default_run" if factor == 1.0 else f"size_{factor:g}"
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}_timesplit.md").write_text(timesplit.markdown_table(timesplit.per_rule(folder / "logs")) + "\n")
        if factor == 1.0:
            extra = ""
            if report:
                seconds = timed_snakemake(folder, "--configfile", "bench.yaml", "--report", "results/report.html")
                extra = f", + report {seconds:.0f} s"
            noop = timed_snakemake(folder, "--configfile", "bench.yaml")
            rows.append(common.row(
                f"the DAG of {config.name} from a clean folder, 2 cores", "goal: 1500 s",
                f"{wall:.0f} s{extra}", 1500 / wall,
            ))
            for exp, s in split.items():
                rows.append(common.row(f"  {exp}: jobs' wall time {s.get('wall', 0):.0f} s", "", split_text(s), None))
            rows.append(common.row("rerun with nothing to do", "goal: 5 s", f"{noop:.1f} s", 5 / noop))
            rows += control_rows(folder, None if out is None else out / "default_run")
        shutil.rmtree(folder / "results")  # disk: a run's model copies and adapters
    smallest = min(scale)
    base = scale[smallest]
    work = lambda s: sum(v.get("generation", 0) + v.get("training", 0) for v in s["split"].values())  # noqa: E731
    for factor in sorted(scale):
        s = scale[factor]
        total = timesplit.totals({k: v for k, v in s["split"].items()})
        rows.append(common.row(
            f"x{factor:g} sizes: wall {s['wall']:.0f} s; jobs' split",
            f"x{smallest:g}: generation + training {work(base):.0f} s" if factor != smallest else "(the smallest size)",
            split_text(total),
            work(s) / work(base) if factor != smallest and work(base) else None,
        ))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.5, 1.0])
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--no-report", action="store_true", help="skip the HTML report after the full-size run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="alignlab-bench-") as workdir:
        common.print_table(run(Path(workdir), tuple(args.sizes), args.config.resolve(), not args.no_report))


if __name__ == "__main__":
    main()
