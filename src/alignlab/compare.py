"""Two result folders side by side (`alignlab compare RUN_A RUN_B`, see alignlab.cli).

Tables are matched by their path relative to each folder (every `*.parquet` below it, hidden
temporaries left out). `compare` returns one long frame with the declared schema
"run_comparison" (RUN_COMPARISON, in artifacts.SCHEMAS once this module is imported), in four
sections:

- `table`: a table only one run has (`item`: only_in_a | only_in_b).
- `drift`: for a table both runs have, what differs in how it was made: `alignlab_version`,
  `params_sha256`, `template_sha256` (one row per template name whose hash differs or that one
  run lacks), `columns` (columns one run lacks or has with another type), and every per-row
  hash column (a string column named `*_sha256`): how many of the rows matched by key have
  another hash, and the distinct hashes on those rows; `rows` counts the rows of such a table
  that only one run has.
- `metric`: for the summary tables, each metric both runs have on a matched row: the two values
  with their intervals, the difference B - A, and whether the intervals overlap.
- `row`: a summary-table row only one run has.

The rules are general (no kind is named here):

- Summary tables: those whose file name (without `.parquet`) a registered kind lists in
  `Kind.report_tables`, and the shared `contrasts` and `replication`.
- A row's key: the table's leading string and boolean columns (e.g. experiment, arm, tier,
  judge of a metrics table), and as many of its identifier columns (string, integer or boolean,
  not `*_sha256`, in schema order) as it takes to name one row in each run; when even all of
  them repeat, rows with the same values are matched in file order (`occurrence`). The leading
  columns keep rows that differ in what they measure (another judge) from being matched only
  because each run has one of them.
- A metric: a float column. Its interval: `X_lo`/`X_hi` for X, or for the one float column
  named `X_...` when there is no X (`af_lo`/`af_hi` for `af_rate`); `lo`/`hi` for `estimate` or
  `value`, otherwise for the float column just before `lo`. A bound without its value column is
  a metric of its own.
"""

from __future__ import annotations

import fnmatch
import json
from itertools import takewhile
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from alignlab import artifacts, kinds, report

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()
# One row per finding. `section`: table (only in one run; `item` only_in_a | only_in_b), drift
# (`item` what differs: alignlab_version, params_sha256, template_sha256 with the template as
# `name`, columns, a per-row hash column with `rows_matched` by the key columns `matched_by` and
# `rows_differing`, or rows: the counts only in A and only in B; `a` and `b` the two values,
# distinct ones comma-separated), metric (`item` the metric column, `key` the row), row (a
# summary-table row only in one run).
RUN_COMPARISON = pa.schema(
    [
        ("section", _str), ("table", _str), ("item", _str), ("name", _str), ("key", _str),
        ("a", _str), ("b", _str), ("matched_by", _str), ("rows_matched", _i64), ("rows_differing", _i64),
        ("value_a", _f64), ("lo_a", _f64), ("hi_a", _f64), ("value_b", _f64), ("lo_b", _f64),
        ("hi_b", _f64), ("difference", _f64), ("intervals_overlap", _bool),
    ]
)
# Registered here rather than listed in artifacts.py: every step's rule has artifacts.py among
# its code inputs, so editing it would rerun every step of every finished run for a table no
# step writes.
artifacts.register_schemas("compare", {"run_comparison": RUN_COMPARISON})

SHARED_SUMMARY_TABLES = ("contrasts", "replication")
OCCURRENCE = "occurrence"  # key column added when the identifier columns do not name one row
_B = "__b"  # suffix of run B's columns after a join
_KEY = "__key"  # a row's key as text, "column=value, ..."


class CompareError(ValueError):
    """Bad input: a run folder that is missing, is not a folder or holds no tables, or a table
    that cannot be read."""


def comparison_schema() -> pl.Schema:
    return pl.from_arrow(RUN_COMPARISON.empty_table()).schema


def summary_table_names() -> set[str]:
    return set(SHARED_SUMMARY_TABLES) | {t for kind in kinds.load().values() for t in kind.report_tables}


def list_tables(run: str | Path, pattern: str = "*") -> dict[str, Path]:
    """The tables under `run` whose relative path matches `pattern`, by relative path."""
    run = Path(run)
    if not run.exists():
        raise CompareError(f"{run}: no such folder")
    if not run.is_dir():
        raise CompareError(f"{run}: not a folder")
    tables = {}
    for path in sorted(run.rglob("*.parquet")):
        relative = path.relative_to(run)
        if not any(part.startswith(".") for part in relative.parts):
            tables[relative.as_posix()] = path
    if not tables:
        raise CompareError(f"{run}: no tables (*.parquet) in this folder or below it")
    return {name: path for name, path in tables.items() if fnmatch.fnmatchcase(name, pattern)}


def _readable(path: Path, read):
    try:
        return read()
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as err:
        raise CompareError(f"{path}: cannot read it as Parquet ({err})") from None


def _schema(path: Path) -> pl.Schema:
    return _readable(path, lambda: pl.read_parquet_schema(path))


def _templates(path: Path, meta: dict[str, str]) -> dict[str, str]:
    if "template_sha256" not in meta:
        return {}
    try:
        return json.loads(meta["template_sha256"])
    except json.JSONDecodeError:
        raise CompareError(f"{path}: metadata template_sha256 is not JSON") from None


def _common_columns(schema_a: pl.Schema, schema_b: pl.Schema) -> dict[str, pl.DataType]:
    """Columns both tables have with the same type, in A's order."""
    return {c: t for c, t in schema_a.items() if schema_b.get(c) == t}


def is_hash_column(name: str, dtype: pl.DataType) -> bool:
    return name.endswith("_sha256") and dtype == pl.String


def identifier_columns(schema: dict[str, pl.DataType]) -> list[str]:
    return [
        c for c, t in schema.items()
        if (t == pl.String or t == pl.Boolean or t.is_integer()) and not is_hash_column(c, t)
    ]


def _names_one_row(path: Path, columns: list[str]) -> bool:
    def count():
        scan = pl.scan_parquet(path)
        rows = scan.select(pl.len()).collect().item()
        return scan.select(columns).unique().select(pl.len()).collect().item() == rows

    return _readable(path, count)


def matched_rows(path_a: Path, path_b: Path, common: dict, columns: list[str]) -> tuple[list[str], pl.DataFrame, pl.DataFrame]:
    """The key (module doc) and both tables' key and `columns` (uniqueness is checked lazily: a
    samples table's text columns are rarely needed)."""
    candidates = identifier_columns(common)
    leading = list(takewhile(lambda c: common[c] in (pl.String, pl.Boolean) and c in candidates, common))
    key = None
    for k in range(len(candidates) + 1):
        cols = [c for c in candidates if c in leading or c in candidates[:k]]
        if cols and _names_one_row(path_a, cols) and _names_one_row(path_b, cols):
            key = cols
            break
    wanted = [*(key or candidates), *(c for c in columns if c not in (key or candidates))]
    a = _readable(path_a, lambda: pl.read_parquet(path_a, columns=wanted))
    b = _readable(path_b, lambda: pl.read_parquet(path_b, columns=wanted))
    if key is None:
        # Repeated keys: match the n-th row with the n-th row of the same values.
        def numbered(df):
            if not candidates:
                return df.with_row_index(OCCURRENCE)
            return df.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).over(candidates).alias(OCCURRENCE))

        key, a, b = [*candidates, OCCURRENCE], numbered(a), numbered(b)
    return key, a, b


def _row(section: str, table: str, **values: Any) -> dict[str, Any]:
    return {"section": section, "table": table, **values}


def table_drift(table: str, path_a: Path, path_b: Path) -> list[dict[str, Any]]:
    """What differs in how one table of each run was made (drift rows, see the module doc)."""
    rows = []
    meta_a = _readable(path_a, lambda: artifacts.read_metadata(path_a))
    meta_b = _readable(path_b, lambda: artifacts.read_metadata(path_b))
    for item in ("alignlab_version", "params_sha256"):
        if meta_a.get(item) != meta_b.get(item):
            rows.append(_row("drift", table, item=item, a=meta_a.get(item), b=meta_b.get(item)))
    templates_a, templates_b = _templates(path_a, meta_a), _templates(path_b, meta_b)
    for name in sorted(set(templates_a) | set(templates_b)):
        if templates_a.get(name) != templates_b.get(name):
            rows.append(_row("drift", table, item="template_sha256", name=name,
                             a=templates_a.get(name), b=templates_b.get(name)))

    schema_a, schema_b = _schema(path_a), _schema(path_b)
    columns_a = [f"{c} ({t})" for c, t in schema_a.items() if schema_b.get(c) != t]
    columns_b = [f"{c} ({t})" for c, t in schema_b.items() if schema_a.get(c) != t]
    if columns_a or columns_b:
        rows.append(_row("drift", table, item="columns", a=", ".join(columns_a) or None, b=", ".join(columns_b) or None))

    common = _common_columns(schema_a, schema_b)
    hash_columns = [c for c, t in common.items() if is_hash_column(c, t)]
    if not hash_columns:
        return rows
    key, a, b = matched_rows(path_a, path_b, common, hash_columns)
    joined = a.join(b, on=key, how="inner", nulls_equal=True, suffix=_B)
    rows_a = a.join(b, on=key, how="anti", nulls_equal=True).height
    rows_b = b.join(a, on=key, how="anti", nulls_equal=True).height
    if rows_a or rows_b:
        rows.append(_row("drift", table, item="rows", matched_by=", ".join(key), rows_matched=joined.height,
                         a=str(rows_a), b=str(rows_b)))
    for column in hash_columns:
        differing = joined.filter(pl.col(column).ne_missing(pl.col(column + _B)))
        if differing.height:
            rows.append(_row(
                "drift", table, item=column, matched_by=", ".join(key),
                rows_matched=joined.height, rows_differing=differing.height,
                a=_distinct(differing[column]), b=_distinct(differing[column + _B]),
            ))
    return rows


def _distinct(values: pl.Series) -> str:
    return ", ".join(sorted(values.fill_null("null").unique().to_list()))


def metric_columns(schema: dict[str, pl.DataType]) -> dict[str, tuple[str | None, str | None]]:
    """Each metric (float column) of a table -> its interval's (lo, hi) columns, or (None, None)."""
    floats = [c for c, t in schema.items() if t.is_float()]
    interval: dict[str, tuple[str, str]] = {}
    for lo in floats:
        if not lo.endswith("_lo") or lo[:-3] + "_hi" not in floats:
            continue
        stem, hi = lo[:-3], lo[:-3] + "_hi"
        named = [c for c in floats if c.startswith(stem + "_") and not c.endswith(("_lo", "_hi"))]
        owner = stem if stem in floats else named[0] if len(named) == 1 else None
        if owner is not None:
            interval[owner] = (lo, hi)
    if "lo" in floats and "hi" in floats:
        before_lo = list(schema)[list(schema).index("lo") - 1]
        owner = next((c for c in ("estimate", "value") if c in floats), before_lo if before_lo in floats else None)
        if owner is not None and owner not in ("lo", "hi"):
            interval[owner] = ("lo", "hi")
    bounds = {c for pair in interval.values() for c in pair}
    return {c: interval.get(c, (None, None)) for c in floats if c not in bounds}


def _key_text(key: list[str]) -> pl.Expr:
    return pl.concat_str(
        [pl.lit(f"{c}=") + pl.col(c).cast(pl.String).fill_null("null") for c in key], separator=", "
    ) if key else pl.lit("")


def table_metrics(table: str, path_a: Path, path_b: Path) -> list[dict[str, Any]]:
    """Each metric both runs have on a row matched by key (metric rows), and the rows one run
    lacks (row rows)."""
    common = _common_columns(_schema(path_a), _schema(path_b))
    metrics = metric_columns(common)
    if not metrics:
        return []
    needed = [c for metric, bounds in metrics.items() for c in (metric, *bounds) if c]
    key, a, b = matched_rows(path_a, path_b, common, needed)
    a, b = a.with_columns(_key_text(key).alias(_KEY)), b.with_columns(_key_text(key).alias(_KEY))
    rows = [
        _row("row", table, item=item, key=k)
        for item, (mine, theirs) in (("only_in_a", (a, b)), ("only_in_b", (b, a)))
        for k in mine.join(theirs, on=key, how="anti", nulls_equal=True)[_KEY]
    ]
    joined = a.join(b, on=key, how="inner", nulls_equal=True, suffix=_B, maintain_order="left")
    for matched in joined.iter_rows(named=True):
        for metric, (lo, hi) in metrics.items():
            va, vb = matched[metric], matched[metric + _B]
            lo_a, hi_a = (matched[lo], matched[hi]) if lo else (None, None)
            lo_b, hi_b = (matched[lo + _B], matched[hi + _B]) if lo else (None, None)
            bounds_known = all(report.finite(x) for x in (lo_a, hi_a, lo_b, hi_b))
            rows.append(_row(
                "metric", table, item=metric, key=matched[_KEY],
                value_a=va, lo_a=lo_a, hi_a=hi_a, value_b=vb, lo_b=lo_b, hi_b=hi_b,
                difference=vb - va if report.finite(va) and report.finite(vb) else None,
                intervals_overlap=(lo_a <= hi_b and lo_b <= hi_a) if bounds_known else None,
            ))
    return rows


def compare(run_a: str | Path, run_b: str | Path, pattern: str = "*") -> pl.DataFrame:
    """The comparison of two result folders (schema "run_comparison", sections in the module doc)."""
    tables_a, tables_b = list_tables(run_a, pattern), list_tables(run_b, pattern)
    if not tables_a and not tables_b:
        raise CompareError(f"no table in {run_a} or {run_b} matches --tables '{pattern}'")
    rows = [_row("table", t, item="only_in_a") for t in tables_a if t not in tables_b]
    rows += [_row("table", t, item="only_in_b") for t in tables_b if t not in tables_a]
    summary = summary_table_names()
    both = [t for t in tables_a if t in tables_b]
    for table in both:
        rows += table_drift(table, tables_a[table], tables_b[table])
    for table in both:
        if Path(table).stem in summary:
            rows += table_metrics(table, tables_a[table], tables_b[table])
    schema = comparison_schema()
    return pl.DataFrame([{c: row.get(c) for c in schema} for row in rows], schema=schema)


# Markdown


def _hash(value: str | None) -> str:
    return f"`{value[:12]}`" if value else "absent"


def _hashes(listed: str | None, show: int = 3) -> str:
    values = listed.split(", ") if listed else []
    more = f" and {len(values) - show} more" if len(values) > show else ""
    return ", ".join(_hash(v) for v in values[:show]) + more


def _value(value, lo, hi) -> str:
    text = report.number(value, "{:.4g}")
    return f"{text} [{report.number(lo, '{:.4g}')}, {report.number(hi, '{:.4g}')}]" if report.finite(lo) and report.finite(hi) else text


def _drift_line(row: dict) -> str:
    item = row["item"]
    if item == "alignlab_version":
        return f"- alignlab_version: {row['a'] or 'absent'} (A) vs {row['b'] or 'absent'} (B)"
    if item == "params_sha256":
        return f"- params_sha256: {_hash(row['a'])} (A) vs {_hash(row['b'])} (B)"
    if item == "template_sha256":
        return f"- template `{row['name']}`: {_hash(row['a'])} (A) vs {_hash(row['b'])} (B)"
    if item == "rows":
        return (f"- rows: {row['a']} only in A, {row['b']} only in B, whose hashes are not compared "
                f"({row['rows_matched']} matched by {row['matched_by']})")
    if item == "columns":
        return f"- columns only in A: {row['a'] or 'none'}; only in B: {row['b'] or 'none'}"
    return (
        f"- `{item}`: {row['rows_differing']} of {row['rows_matched']} rows differ "
        f"(rows matched by {row['matched_by']}); A: {_hashes(row['a'])}; B: {_hashes(row['b'])}"
    )


def markdown(comparison: pl.DataFrame, run_a: str | Path, run_b: str | Path) -> str:
    """The comparison as Markdown: drift per table, tables in one run only, metrics per table."""
    section = {name: comparison.filter(pl.col("section") == name) for name in ("table", "drift", "metric", "row")}
    only = {item: section["table"].filter(pl.col("item") == item)["table"].to_list() for item in ("only_in_a", "only_in_b")}
    metrics = section["metric"]
    changed = metrics.filter(pl.col("value_a").fill_nan(None).ne_missing(pl.col("value_b").fill_nan(None))).height
    separate = metrics.filter(pl.col("intervals_overlap").not_()).height
    drifted = section["drift"]["table"].unique(maintain_order=True).to_list()
    out = [
        "# Comparing two runs", "",
        f"- A: `{run_a}`", f"- B: `{run_b}`", "",
        f"Drift in {len(drifted)} table(s); {len(only['only_in_a'])} table(s) only in A, "
        f"{len(only['only_in_b'])} only in B. {metrics.height} metric value(s) compared, "
        f"{changed} differ, {separate} with intervals that do not overlap.", "",
        "## Drift", "",
    ]
    if not drifted:
        out += ["No drift: every table both runs have carries the same version, parameter and template hashes, "
                "columns and per-row hashes.", ""]
    for table in drifted:
        out += [f"### `{table}`", ""]
        out += [_drift_line(r) for r in section["drift"].filter(pl.col("table") == table).iter_rows(named=True)]
        out.append("")
    for item, run in (("only_in_a", "A"), ("only_in_b", "B")):
        if only[item]:
            out += [f"Tables only in {run}: " + ", ".join(f"`{t}`" for t in only[item]), ""]
    out += ["## Metrics", ""]
    if metrics.is_empty() and section["row"].is_empty():
        out += ["No metric both runs have (summary tables: " + ", ".join(sorted(summary_table_names())) + ").", ""]
    for table in pl.concat([metrics["table"], section["row"]["table"]]).unique(maintain_order=True):
        rows = metrics.filter(pl.col("table") == table)
        out += [f"### `{table}`", ""]
        if rows.height:
            out += [report.table(
                ["row", "metric", "A", "B", "B - A", "intervals overlap"],
                [[r["key"].replace("|", "\\|"), r["item"], _value(r["value_a"], r["lo_a"], r["hi_a"]),
                  _value(r["value_b"], r["lo_b"], r["hi_b"]), report.number(r["difference"], "{:+.4g}"),
                  "–" if r["intervals_overlap"] is None else "yes" if r["intervals_overlap"] else "**no**"]
                 for r in rows.iter_rows(named=True)],
            ), ""]
        for item, run in (("only_in_a", "A"), ("only_in_b", "B")):
            keys = section["row"].filter((pl.col("table") == table) & (pl.col("item") == item))["key"].to_list()
            if keys:
                out += [f"Rows only in {run}: " + "; ".join(f"`{k}`" for k in keys), ""]
    return "\n".join(out).rstrip() + "\n"
