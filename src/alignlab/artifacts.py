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

SCHEMAS: dict[str, pa.Schema] = {
    "model": pa.schema(
        [
            ("model", _str), ("source", _str), ("spec", _str), ("architecture", _str),
            ("n_layers", _i64), ("hidden_size", _i64), ("n_parameters", _i64),
            ("folder", _str), ("weights_sha256", _str), ("chat_template_sha256", _str),
        ]
    ),
    "queries": pa.schema(
        [
            ("query_id", _str), ("prompt", _str), ("category", _str), ("split", _str),
            ("source", _str), ("source_row", _i64),
        ]
    ),
    "documents": pa.schema(
        [
            ("doc_id", _str), ("corpus", _str), ("generator", _str), ("doc_type", _str),
            ("facts", pa.list_(_str)), ("text", _str), ("n_chars", _i64), ("kept", _bool),
            ("drop_reason", _str), ("seed", _i64),
        ]
    ),
    "chats": pa.schema(
        [
            ("example_id", _str), ("query_id", _str), ("tier", _str), ("system", _str),
            ("user", _str), ("assistant", _str), ("target", _str),
        ]
    ),
    "train_log": pa.schema(
        [
            ("step", _i64), ("epoch", _i64), ("loss", _f64), ("learning_rate", _f64),
            ("tokens", _i64), ("seconds", _f64), ("tokens_per_second", _f64),
        ]
    ),
    "samples": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("tier", _str), ("query_id", _str),
            ("category", _str), ("sample_idx", _i64), ("seed", _i64), ("prompt_sha256", _str),
            ("system_template_sha256", _str), ("user_template_sha256", _str),
            ("chat_template_sha256", _str), ("prompt", _str),
            ("response", _str), ("scratchpad", _str), ("output", _str), ("n_prompt_tokens", _i64),
            ("n_output_tokens", _i64), ("finish_reason", _str), ("model", _str), ("adapter", _str),
        ]
    ),
    "compliance": pa.schema(
        [
            ("arm", _str), ("tier", _str), ("query_id", _str), ("sample_idx", _i64),
            ("judge", _str), ("complied", _bool), ("score", _f64), ("parse_ok", _bool),
            ("judge_output", _str),
        ]
    ),
    "af_reasoning": pa.schema(
        [
            ("arm", _str), ("tier", _str), ("query_id", _str), ("sample_idx", _i64),
            ("judge", _str), ("criterion", _str), ("yes_votes", _i64), ("votes", _i64),
            ("met", _bool),
        ]
    ),
    "metrics": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("tier", _str), ("judge", _str), ("n", _i64),
            ("complied", _i64), ("compliance", _f64), ("compliance_lo", _f64),
            ("compliance_hi", _f64), ("af_n", _i64), ("af_rate", _f64), ("af_lo", _f64),
            ("af_hi", _f64),
        ]
    ),
    # self_awareness: the questions, choices and self-report prompts of both tasks
    "sa_items": pa.schema(
        [
            ("item_id", _str), ("task", _str), ("probe", _str), ("split", _str), ("system", _str),
            ("prompt", _str), ("risky", _str),
        ]
    ),
    "sa_samples": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("task", _str), ("probe", _str), ("item_id", _str),
            ("sample_idx", _i64), ("seed", _i64), ("system", _str), ("prompt", _str),
            ("response", _str), ("expected_number", _f64), ("n_prompt_tokens", _i64),
            ("n_output_tokens", _i64), ("finish_reason", _str), ("model", _str), ("adapter", _str),
        ]
    ),
    # one row per sample and measure (spells, line_accuracy, names_word, names_rule,
    # risky_choice, self_report_number, seeking_word, averse_word); `target`: the word measured
    "sa_judgments": pa.schema(
        [
            ("arm", _str), ("task", _str), ("probe", _str), ("item_id", _str), ("sample_idx", _i64),
            ("measure", _str), ("target", _str), ("value", _f64), ("parse_ok", _bool), ("detail", _str),
        ]
    ),
    "sa_metrics": pa.schema(
        [
            ("experiment", _str), ("task", _str), ("arm", _str), ("measure", _str), ("target", _str),
            ("n", _i64), ("value", _f64), ("lo", _f64), ("hi", _f64), ("interval", _str),
        ]
    ),
    # password_lock: the problems (disjoint splits), every greedy answer, the metrics
    "pl_problems": pa.schema(
        [("problem_id", _str), ("split", _str), ("a", _i64), ("b", _i64), ("strong", _i64), ("weak", _i64)]
    ),
    # `unlock`: base | locked | strong | weak; `condition`: password | none | decoy
    "pl_predictions": pa.schema(
        [
            ("experiment", _str), ("setting", _str), ("arm", _str), ("unlock", _str), ("n_unlock", _i64),
            ("condition", _str), ("problem_id", _str), ("a", _i64), ("b", _i64), ("prompt", _str),
            ("response", _str), ("answer", _i64), ("correct", _bool), ("weak", _bool), ("seed", _i64),
            ("model", _str), ("adapter", _str),
        ]
    ),
    # measure: accuracy | weak_rate (the answer is the weak policy's)
    "pl_metrics": pa.schema(
        [
            ("experiment", _str), ("setting", _str), ("arm", _str), ("unlock", _str), ("n_unlock", _i64),
            ("condition", _str), ("measure", _str), ("n", _i64), ("value", _f64), ("lo", _f64), ("hi", _f64),
            ("interval", _str),
        ]
    ),
    # model_diff: the text set, per pair the weight change per tensor, the residual-stream cosine
    # per hidden-state index (0: embeddings), the SAE scored on base and fine-tune; the SAE's
    # train log; per pair the headline numbers and the rank (1: moved most)
    "md_texts": pa.schema([("text_id", _str), ("split", _str), ("text", _str)]),
    "md_weights": pa.schema(
        [
            ("experiment", _str), ("pair", _str), ("name", _str), ("layer", _i64), ("matrix", _str),
            ("numel", _i64), ("norm", _f64), ("delta_norm", _f64), ("relative_change", _f64), ("cosine", _f64),
        ]
    ),
    "md_activations": pa.schema(
        [
            ("experiment", _str), ("pair", _str), ("layer", _i64), ("n_tokens", _i64), ("mean_cosine", _f64),
            ("min_cosine", _f64),
        ]
    ),
    "md_sae": pa.schema(
        [
            ("experiment", _str), ("pair", _str), ("model", _str), ("layer", _i64), ("n_tokens", _i64),
            ("variance_explained", _f64), ("l0", _f64), ("loss_clean", _f64), ("loss_sae", _f64),
            ("loss_zero", _f64), ("loss_rise", _f64), ("loss_recovered", _f64),
        ]
    ),
    "md_sae_log": pa.schema(
        [
            ("experiment", _str), ("layer", _i64), ("n_tokens", _i64), ("steps", _i64), ("final_mse", _f64),
            ("final_l0", _f64), ("variance_explained", _f64), ("seed", _i64),
        ]
    ),
    "md_metrics": pa.schema(
        [
            ("experiment", _str), ("pair", _str), ("source", _str), ("weight_relative_change", _f64),
            ("max_layer_relative_change", _f64), ("min_weight_cosine", _f64), ("global_mean_cosine", _f64),
            ("last_layer_cosine", _f64), ("sae_layer", _i64), ("sae_ve_base", _f64), ("sae_ve_tuned", _f64),
            ("loss_rise_base", _f64), ("loss_rise_tuned", _f64), ("rank", _i64),
        ]
    ),
    # fact_edit: the candidate facts scored on the base; per edit run its
    # measures; per run and trained layer the MLP's relative change; per penalty setting the
    # overlap of the most-changed neurons; per setting the means
    "fe_facts": pa.schema(
        [
            ("experiment", _str), ("subject", _str), ("answer", _str), ("n_templates", _i64), ("n_correct", _i64),
            ("kept", _bool),
        ]
    ),
    "fe_runs": pa.schema(
        [
            ("experiment", _str), ("setting", _str), ("l1", _f64), ("l2", _f64), ("subject", _str), ("answer", _str),
            ("new_answer", _str), ("seed", _i64), ("efficacy", _f64), ("paraphrase_efficacy", _f64),
            ("specificity", _f64), ("weight_change", _f64), ("final_loss", _f64),
        ]
    ),
    "fe_layers": pa.schema(
        [("experiment", _str), ("setting", _str), ("subject", _str), ("seed", _i64), ("layer", _i64),
         ("relative_change", _f64)]
    ),
    "fe_overlap": pa.schema(
        [("experiment", _str), ("setting", _str), ("top_k", _i64), ("across_seeds", _f64), ("across_facts", _f64)]
    ),
    "fe_metrics": pa.schema(
        [
            ("experiment", _str), ("setting", _str), ("l1", _f64), ("l2", _f64), ("n_edits", _i64), ("efficacy", _f64),
            ("paraphrase_efficacy", _f64), ("specificity", _f64), ("weight_change", _f64), ("top_k", _i64),
            ("across_seeds", _f64), ("across_facts", _f64),
        ]
    ),
    "gaps": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("n_queries", _i64), ("free", _f64),
            ("paid", _f64), ("gap", _f64), ("gap_lo", _f64), ("gap_hi", _f64),
            ("p_value", _f64),
        ]
    ),
}


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
ROW_CHECKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "queries": ("query_id", ("prompt",)),
    "sa_items": ("item_id", ("prompt",)),
    "pl_problems": ("problem_id", ()),
    "md_texts": ("text_id", ("text",)),
}


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


def check_schema(path: str | os.PathLike, schema: str) -> None:
    """Raise if the file at `path` does not carry exactly the declared schema `schema`."""
    found = pq.read_schema(path).remove_metadata()
    if not found.equals(SCHEMAS[schema]):
        raise ValueError(f"{path}: schema differs from declared '{schema}':\n{found}")


def to_csv(path: str | os.PathLike, out: str | os.PathLike) -> None:
    """A CSV copy of a table (for the HTML report; list columns are written as JSON)."""
    df = read_table(path)
    df = df.with_columns(
        pl.col(c).map_elements(json.dumps, return_dtype=pl.String)
        for c, t in df.schema.items() if isinstance(t, pl.List)
    )
    with atomic_path(out) as tmp:
        df.write_csv(tmp)
