"""Shards of the eval queries: which rows a scatter item ("2-of-4") covers, and gathering the
per-shard tables back into one.

Shards are contiguous chunks in table order, so gathering them in order gives the rows in the
order an unsharded run writes them. Seeds are per request, never per shard.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alignlab import artifacts

_ITEM = re.compile(r"^(\d+)-of-(\d+)$")


def parse(item: str) -> tuple[int, int]:
    """'2-of-4' -> (2, 4): Snakemake's scatter item, 1-based."""
    m = _ITEM.match(item)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ValueError(f"shard '{item}': expected '<i>-of-<n>' with 1 <= i <= n")
    return int(m.group(1)), int(m.group(2))


def chunk(table: pl.DataFrame, item: str) -> pl.DataFrame:
    """The rows of shard `item`: contiguous, sizes differing by at most one row."""
    i, n = parse(item)
    size, extra = divmod(table.height, n)
    start = (i - 1) * size + min(i - 1, extra)
    return table.slice(start, size + (1 if i <= extra else 0))


def gather(*, paths: Sequence[str | os.PathLike], schema: str, out: str, arm: str | None = None) -> None:
    """Concatenate shard tables in order (only the rows of `arm`, if given: sampling shards hold
    every arm). They must carry the same metadata (same parameters and templates), which the
    gathered table keeps, so it reads like the output of one job."""
    tables = [pq.read_table(p) for p in paths]
    if arm is not None:
        tables = [t.filter(pc.field("arm") == arm) for t in tables]
    metas = [t.schema.metadata for t in tables]
    for path, meta in zip(paths, metas):
        if meta != metas[0]:
            raise ValueError(
                f"shard '{path}' was made with other parameters or templates than '{paths[0]}'; "
                "rerun the shards"
            )
    table = pa.concat_tables(tables).cast(artifacts.SCHEMAS[schema]).replace_schema_metadata(metas[0])
    with artifacts.atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
