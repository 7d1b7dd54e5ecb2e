"""Every benchmark in one run: sampling, serving all arms, training, and the whole DAG.

Prints one table, each figure beside its baseline measured in the same run, and with
`--markdown FILE` writes it as Markdown (the README's "Benchmarks" table is this output).
About 40 minutes on 2 cores; `--skip pipeline` leaves out the DAG runs (~25 minutes of it).

    .venv/bin/python bench/run_all.py [--markdown bench/latest.md] [--skip pipeline ...]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import _common as common
import arms
import pipeline
import sampling
import training

SUITES = {
    "sampling": sampling.run,
    "arms": arms.run,
    "training": lambda workdir: training.run(out=str(Path(__file__).parent / "results" / "training_loss.png")),
    "pipeline": pipeline.run,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", type=Path, help="also write the table here as Markdown")
    ap.add_argument("--skip", nargs="*", default=[], choices=list(SUITES))
    args = ap.parse_args()
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alignlab-bench-") as workdir:
        for name, suite in SUITES.items():
            if name in args.skip:
                continue
            print(f"== {name}", flush=True)
            got = suite(Path(workdir))
            common.print_table(got)
            rows += got
    print(f"\nall benchmarks ({time.perf_counter() - start:.0f} s, {platform.node()}):")
    common.print_table(rows)
    if args.markdown:
        args.markdown.write_text(common.markdown_table(rows) + "\n")


if __name__ == "__main__":
    main()
