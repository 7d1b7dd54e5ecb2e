"""Reading a user's table file (CSV, JSONL or Parquet) with errors that name the file and, where
a row is bad, the line an editor shows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl


class TableFileError(ValueError):
    pass


def read_file(path: Path) -> pl.DataFrame:
    readers = {".csv": pl.read_csv, ".jsonl": pl.read_ndjson, ".parquet": pl.read_parquet}
    if path.suffix not in readers:
        raise TableFileError(f"{path}: expected a .csv, .jsonl or .parquet file")
    if not path.is_file():
        raise TableFileError(f"{path}: file does not exist")
    try:
        return readers[path.suffix](path)
    except Exception as exc:  # noqa: BLE001 - polars' parse errors do not name the file
        if path.suffix == ".jsonl":
            for line, text in enumerate(path.read_text(errors="replace").splitlines(), 1):
                try:
                    if text.strip():
                        json.loads(text)
                except ValueError as bad:
                    raise TableFileError(f"{path}, line {line}: not valid JSON ({bad})") from None
        raise TableFileError(f"{path}: cannot be read as {path.suffix[1:].upper()}: {exc}") from None


def row_names(file: Path, n_rows: int) -> list[str]:
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
