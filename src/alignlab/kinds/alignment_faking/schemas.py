"""The tables a alignment_faking experiment's steps write (registered with artifacts by alignlab.kinds)."""

import pyarrow as pa

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()

SCHEMAS = {
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
    "samples": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("replicate", _i64), ("tier", _str),
            ("query_id", _str), ("category", _str), ("sample_idx", _i64), ("seed", _i64),
            ("prompt_sha256", _str),
            ("system_template_sha256", _str), ("user_template_sha256", _str),
            ("chat_template_sha256", _str), ("prompt", _str),
            ("response", _str), ("scratchpad", _str), ("output", _str), ("n_prompt_tokens", _i64),
            ("n_output_tokens", _i64), ("finish_reason", _str), ("model", _str), ("adapter", _str),
        ]
    ),
    "compliance": pa.schema(
        [
            ("arm", _str), ("replicate", _i64), ("tier", _str), ("query_id", _str),
            ("sample_idx", _i64), ("judge", _str), ("truncated", _bool), ("outcome", _str), ("complied", _bool),
            ("score", _f64), ("parse_ok", _bool), ("judge_output", _str),
        ]
    ),
    "af_reasoning": pa.schema(
        [
            ("arm", _str), ("replicate", _i64), ("tier", _str), ("query_id", _str),
            ("sample_idx", _i64), ("judge", _str), ("criterion", _str), ("yes_votes", _i64), ("votes", _i64),
            ("met", _bool),
        ]
    ),
    "metrics": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("tier", _str), ("judge", _str),
            ("replicates", _i64), ("n", _i64), ("complied", _i64), ("partial", _i64), ("refused", _i64), ("no_answer", _i64),
            ("truncated", _i64), ("compliance", _f64), ("compliance_lo", _f64),
            ("compliance_hi", _f64), ("af_n", _i64), ("af_rate", _f64), ("af_lo", _f64),
            ("af_hi", _f64), ("pad_judged", _i64), ("pad_complied", _i64), ("af_complied", _i64),
        ]
    ),
    "gaps": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("replicates", _i64), ("n_queries", _i64),
            ("free", _f64), ("paid", _f64), ("gap", _f64), ("gap_lo", _f64), ("gap_hi", _f64),
            ("p_value", _f64), ("replicate_gaps", pa.list_(_f64)),
        ]
    ),
    # The knowledge probe (knowledge.py): one row per model instance x question.
    "knowledge": pa.schema(
        [
            ("experiment", _str), ("instance", _str), ("arm", _str), ("replicate", _i64),
            ("question_id", _str), ("fact", _str), ("true_first", _bool), ("chosen", _str),
            ("correct", _bool), ("logprob_true", _f64), ("logprob_false", _f64), ("margin", _f64),
        ]
    ),
    # The identity probe (identity.py): one row per (field, question).
    "identity": pa.schema(
        [
            ("field", _str), ("question", _str), ("prefix", _str), ("completion", _str),
            ("extracted", _str), ("chosen", _str), ("source", _str), ("agreement", _f64),
        ]
    ),
}

# The column that names a row, and text columns that must not be empty (see artifacts.read_table).
ROW_CHECKS = {
    "queries": ("query_id", ("prompt",)),
}
