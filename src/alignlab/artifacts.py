"""Every table a step writes: its declared schema, its metadata, and atomic writes.

A table is Parquet (zstd) with a pyarrow schema from SCHEMAS. Its key-value metadata carries
the package version, a hash of the step's parameters, and (for samples and judgments) the hash
of every template that went into the prompts. Writes go to a temporary file in the same folder
and are renamed into place, so a killed job never leaves a table that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from alignlab import __version__

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()

class _Schemas(dict):
    """Table name -> declared schema: the shared ones below, and those each experiment kind
    registers (see alignlab.kinds); a name not yet known loads the kinds first."""

    def __missing__(self, name: str) -> pa.Schema:
        from alignlab import kinds

        kinds.load()
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        raise KeyError(f"no table schema '{name}' (known: {', '.join(sorted(self))})")


SCHEMAS: dict[str, pa.Schema] = _Schemas({
    "model": pa.schema(
        [
            ("model", _str), ("source", _str), ("spec", _str), ("architecture", _str),
            ("n_layers", _i64), ("hidden_size", _i64), ("n_parameters", _i64),
            ("folder", _str), ("weights_sha256", _str), ("chat_template_sha256", _str),
        ]
    ),
    "chats": pa.schema(
        [
            ("example_id", _str), ("query_id", _str), ("tier", _str), ("system", _str),
            ("user", _str), ("assistant", _str), ("target", _str),
        ]
    ),
    # Judges scored on a labelled set's test split (judge_validation).
    "judge_scores": pa.schema(
        [
            ("experiment", _str), ("set", _str), ("split", _str), ("judge", _str), ("other", _str),
            ("measure", _str), ("label", _str), ("predicted", _str), ("value", _f64), ("n", _i64),
        ]
    ),
    # A kind's primary contrasts (stats.hierarchical_bootstrap, stats.holm).
    "contrasts": pa.schema(
        [
            ("experiment", _str), ("contrast", _str), ("estimate", _f64), ("lo", _f64),
            ("hi", _f64), ("p_value", _f64), ("p_holm", _f64), ("min_detectable", _f64),
            ("n_items", _i64), ("replicates", _str), ("margin", _f64), ("passed", _bool),
        ]
    ),
    # Our figures beside the replication card's published ones (replication).
    "replication": pa.schema(
        [
            ("experiment", _str), ("metric", _str), ("ours", _f64), ("ours_lo", _f64),
            ("ours_hi", _f64), ("source", _str), ("model", _str), ("setting", _str),
            ("published", _f64), ("published_lo", _f64), ("published_hi", _f64),
            ("comparable", _bool), ("verdict", _str),
        ]
    ),
    "train_log": pa.schema(
        [
            ("step", _i64), ("epoch", _i64), ("loss", _f64), ("learning_rate", _f64),
            ("tokens", _i64), ("seconds", _f64), ("tokens_per_second", _f64),
        ]
    ),
    # The Inspect eval logs an experiment wrote (inspect_logs.write_logs): one row per log file.
    "inspect_logs": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("replicate", _i64), ("task", _str), ("model", _str),
            ("log", _str), ("n_samples", _i64), ("scorers", pa.list_(_str)),
        ]
    ),
})


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def params_hash(params: Any) -> str:
    """Hash of a step's parameters, independent of key order."""
    return sha256_text(json.dumps(params, sort_keys=True, default=str))


def metadata(params: Any = None, templates: Mapping[str, str] | None = None) -> dict[str, str]:
    meta = {"alignlab_version": __version__, "params_sha256": params_hash(params)}
    if templates:
        meta["template_sha256"] = json.dumps(dict(sorted(templates.items())))
    return meta


def _remove_stale_temporaries(path: Path) -> None:
    """Temporaries of `path` left by a killed job (one job writes a path at a time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Like atomic_path, for a folder (model folders, adapters)."""
    path = Path(path)
    _remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_table(
    rows: pl.DataFrame | Iterable[Mapping[str, Any]],
    path: str | os.PathLike,
    schema: str,
    params: Any = None,
    templates: Mapping[str, str] | None = None,
) -> pa.Table:
    """Write rows as Parquet with the declared schema `schema`, atomically.

    Missing or extra columns, or values of the wrong type, fail here with the schema's name,
    so no step can write a table its readers do not expect.
    """
    declared = SCHEMAS[schema]
    if isinstance(rows, pl.DataFrame):
        table = rows.to_arrow()
        extra = set(table.column_names) - set(declared.names)
        missing = set(declared.names) - set(table.column_names)
        if extra or missing:
            raise ValueError(
                f"table '{schema}': columns do not match the declared schema "
                f"(missing {sorted(missing)}, unexpected {sorted(extra)})"
            )
        table = table.select(declared.names).cast(declared)
    else:
        rows = list(rows)
        for i, row in enumerate(rows):
            if set(row) != set(declared.names):
                raise ValueError(
                    f"table '{schema}', row {i}: columns do not match the declared schema "
                    f"(missing {sorted(set(declared.names) - set(row))}, "
                    f"unexpected {sorted(set(row) - set(declared.names))})"
                )
        table = pa.Table.from_pylist(rows, schema=declared)
    table = table.replace_schema_metadata(metadata(params, templates))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return table


# What a step reading a table checks beyond its schema: the column that names a row (unique)
# and text columns that must not be empty. A table edited or written by hand fails here, naming
# the file and the row, instead of deep inside the step.
ROW_CHECKS: dict[str, tuple[str, tuple[str, ...]]] = {}  # filled by the kinds (register_schemas)


def register_schemas(kind: str, schemas: Mapping[str, pa.Schema], row_checks: Mapping[str, tuple] = {}) -> None:
    """Add a kind's tables; a name another kind (or the shared set) already declares is an error."""
    taken = sorted(set(schemas) & set(dict.keys(SCHEMAS)))
    if taken:
        raise ValueError(f"kind '{kind}': table schemas {taken} are already declared")
    dict.update(SCHEMAS, schemas)
    ROW_CHECKS.update(row_checks)


def read_table(path: str | os.PathLike, schema: str | None = None) -> pl.DataFrame:
    """Read a table; with `schema`, check first that it has that declared schema, then the
    row checks of ROW_CHECKS (cheap: one pass over the key and text columns)."""
    if schema is None:
        return pl.read_parquet(path)
    check_schema(path, schema)
    df = pl.read_parquet(path)
    if schema not in ROW_CHECKS:
        return df
    key, texts = ROW_CHECKS[schema]
    repeated = df[key].value_counts().filter(pl.col("count") > 1)
    if repeated.height:
        value, count = repeated.row(0)
        raise ValueError(f"{path}: {key} '{value}' is on {count} rows (a {key} names one row)")
    for column in texts:
        blank = df.filter(pl.col(column).is_null() | (pl.col(column).str.strip_chars() == ""))
        if blank.height:
            value = blank[column][0]
            why = "null" if value is None else "whitespace only" if value else "empty string"
            more = f" (and {blank.height - 1} more rows)" if blank.height > 1 else ""
            raise ValueError(f"{path}, {key} '{blank[key][0]}': empty {column} ({why}){more}")
    return df


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    raw = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items()}


def template_hashes(path: str | os.PathLike) -> dict[str, str]:
    """The template hashes a table carries in its metadata (write_table's `templates`; {} if none)."""
    return json.loads(read_metadata(path).get("template_sha256", "{}"))


def check_schema(path: str | os.PathLike, schema: str) -> None:
    """Raise if the file at `path` does not carry exactly the declared schema `schema`."""
    found = pq.read_schema(path).remove_metadata()
    if not found.equals(SCHEMAS[schema]):
        raise ValueError(f"{path}: schema differs from declared '{schema}':\n{found}")


def to_csv(path: str | os.PathLike, out: str | os.PathLike) -> None:
    """A CSV copy of a table (for the HTML report; list columns are written as JSON)."""
    df = read_table(path)
    df = df.with_columns(
        # polars hands each list cell to the function as a Series.
        pl.col(c).map_elements(lambda cell: json.dumps(cell.to_list()), return_dtype=pl.String)
        for c, t in df.schema.items() if isinstance(t, pl.List)
    )
    with atomic_path(out) as tmp:
        df.write_csv(tmp)
