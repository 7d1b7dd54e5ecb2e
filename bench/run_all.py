"""Every benchmark in one run: engine start-up, sampling, serving all arms, training, and the
whole DAG.

Prints one table, each figure beside its baseline measured in the same run, and with
`--markdown FILE` writes it as Markdown (the README's "Benchmarks" table is this output).
`--skip pipeline` leaves out the DAG runs (the longest part). `--smallest` runs every benchmark
at its smallest size (the test suite does, so that none rots); its figures mean nothing.

    .venv/bin/python bench/run_all.py [--markdown bench/latest.md] [--skip pipeline ...] [--smallest]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import _common as common
import arms
import pipeline
import sampling
import startup
import training

HERE = Path(__file__).resolve().parent


def smallest_dag_config(workdir: Path) -> Path:
    """tests/configs/tiny_bench.yaml; with ALIGNLAB_BENCH_MODEL_DIR set (the test suite), its
    model is that already materialized folder, so the smoke does not convert the GGUF again."""
    config = HERE.parent / "tests/configs/tiny_bench.yaml"
    if not os.environ.get("ALIGNLAB_BENCH_MODEL_DIR"):
        return config
    import yaml

    cfg = yaml.safe_load(config.read_text())
    cfg["models"] = {name: {"source": "hf_folder", "path": str(common.model_folder(workdir))} for name in cfg["models"]}
    out = workdir / "tiny_bench.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def suites(smallest: bool, workdir: Path) -> dict:
    """name -> a function of the working folder returning result rows."""
    if smallest:
        return {
            "startup": lambda w: startup.run(w, choices=("auto:auto",), chats=2, tokens=4, warm=False),
            "sampling": lambda w: sampling.run(w, queries=1, new_tokens=4, hf_batch=2),
            "arms": lambda w: arms.run(w, queries=1, new_tokens=4, arms=("base", "sdf")),
            "training": lambda w: training.run(n_docs=4, n_heldout=2, out=str(workdir / "training_loss.png"),
                                               docs_per_step=2),
            "pipeline": lambda w: pipeline.run(w, sizes=(1.0,), config=smallest_dag_config(w), report=False, out=None),
        }
    return {
        "startup": startup.run,
        "sampling": sampling.run,
        "arms": arms.run,
        "training": lambda w: training.run(out=str(HERE / "results" / "training_loss.png")),
        # the default config only: the smaller sizes (bench/pipeline.py --sizes 0.5 1) add most of an hour
        "pipeline": lambda w: pipeline.run(w, sizes=(1.0,)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", type=Path, help="also write the table here as Markdown")
    ap.add_argument("--skip", nargs="*", default=[], choices=["startup", "sampling", "arms", "training", "pipeline"])
    ap.add_argument("--smallest", action="store_true", help="every benchmark at its smallest size (a smoke test)")
    args = ap.parse_args()
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alignlab-bench-") as workdir:
        for name, suite in suites(args.smallest, Path(workdir)).items():
            if name in args.skip:
                continue
            print(f"== {name}", flush=True)
            got = suite(Path(workdir))
            common.print_table(got)
            rows += got
    print(f"\nall benchmarks ({time.perf_counter() - start:.0f} s, {platform.node()}, {platform.processor() or platform.machine()}):")
    common.print_table(rows)
    if args.markdown:
        args.markdown.write_text(common.markdown_table(rows) + "\n")


if __name__ == "__main__":
    main()
