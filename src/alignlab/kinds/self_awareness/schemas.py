"""The tables a self_awareness experiment's steps write (registered with artifacts by alignlab.kinds)."""

import pyarrow as pa

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()

SCHEMAS = {
    # self_awareness: the questions, choices and self-report prompts of both tasks
    "sa_items": pa.schema(
        [
            ("item_id", _str), ("task", _str), ("probe", _str), ("split", _str), ("system", _str),
            ("prompt", _str), ("risky", _str),
        ]
    ),
    "sa_samples": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("replicate", _i64), ("task", _str), ("probe", _str),
            ("item_id", _str), ("sample_idx", _i64), ("seed", _i64), ("system", _str), ("prompt", _str),
            ("response", _str), ("expected_number", _f64), ("n_prompt_tokens", _i64),
            ("n_output_tokens", _i64), ("finish_reason", _str), ("model", _str), ("adapter", _str),
        ]
    ),
    # one row per sample and measure (spells, line_accuracy, names_word, names_rule,
    # names_word_early, names_rule_early (in the answer's first line), risky_choice,
    # self_report_number, ordinary_number, seeking_word, averse_word); `target`: the word measured;
    # `replicate`: the arm's training replicate (0 for the base model)
    "sa_judgments": pa.schema(
        [
            ("arm", _str), ("replicate", _i64), ("task", _str), ("probe", _str), ("item_id", _str),
            ("sample_idx", _i64), ("measure", _str), ("target", _str), ("value", _f64), ("parse_ok", _bool), ("detail", _str),
        ]
    ),
    # per arm (over its replicates) and measure; `replicate_values`: each replicate's mean
    "sa_metrics": pa.schema(
        [
            ("experiment", _str), ("task", _str), ("arm", _str), ("measure", _str), ("target", _str),
            ("replicates", _i64), ("n", _i64), ("value", _f64), ("lo", _f64), ("hi", _f64), ("interval", _str),
            ("replicate_values", pa.list_(_f64)),
        ]
    ),
    # behaviour against self-report across arm replicates (`points`: "<arm>" or "<arm>.r<i>",
    # with each point's two means); NaN statistics and a `note` when there are too few points
    "sa_correlation": pa.schema(
        [
            ("experiment", _str), ("task", _str), ("behaviour", _str), ("self_report", _str), ("n_points", _i64),
            ("pearson_r", _f64), ("pearson_p", _f64), ("spearman_r", _f64), ("spearman_p", _f64), ("note", _str),
            ("points", pa.list_(_str)), ("behaviour_values", pa.list_(_f64)), ("self_report_values", pa.list_(_f64)),
        ]
    ),
    # per arm and 0-100 measure (self_report_number, ordinary_number; measures.number_spread):
    # the mean, the SD over held-out items, collapsed (SD below risk.min_spread; null with one
    # item), and for the ordinary questions the mean |arm - base| per item
    "sa_spread": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("measure", _str), ("replicates", _i64), ("n_items", _i64),
            ("mean", _f64), ("sd", _f64), ("collapsed", _bool), ("drift", _f64),
        ]
    ),
}

# The column that names a row, and text columns that must not be empty (see artifacts.read_table).
ROW_CHECKS = {
    "sa_items": ("item_id", ("prompt",)),
}
