"""The `alignlab` console script. `alignlab compare RUN_A RUN_B` puts two result folders side by
side (alignlab.compare): Markdown to stdout, and with `--out` the same comparison as Parquet."""

from __future__ import annotations

import argparse
import sys

from alignlab import artifacts, compare


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="alignlab", description="alignlab tools for finished runs.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmp = commands.add_parser(
        "compare",
        help="put two result folders side by side: harness drift and metrics",
        description="Compare two result folders (e.g. two runs' results/, or one experiment's "
        "results/<name>), matching tables by relative path: which version, parameter, template "
        "and per-row hashes differ per table, and each metric both runs have with its interval "
        "and the difference B - A. Differences are not errors: the exit code is 0 when it ran.",
    )
    cmp.add_argument("run_a", metavar="RUN_A", help="the first result folder")
    cmp.add_argument("run_b", metavar="RUN_B", help="the second result folder")
    cmp.add_argument("--out", metavar="PATH.parquet", help="also write the comparison as a Parquet table (schema run_comparison)")
    cmp.add_argument("--tables", metavar="GLOB", default="*",
                     help="compare only tables whose relative path matches GLOB, e.g. 'af/*' (default: all)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        comparison = compare.compare(args.run_a, args.run_b, args.tables)
    except compare.CompareError as err:
        print(f"alignlab {args.command}: error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(compare.markdown(comparison, args.run_a, args.run_b))
    if args.out:
        try:
            artifacts.write_table(comparison, args.out, "run_comparison",
                                  params={"run_a": args.run_a, "run_b": args.run_b, "tables": args.tables})
        except OSError as err:
            print(f"alignlab {args.command}: error: cannot write {args.out}: {err}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
