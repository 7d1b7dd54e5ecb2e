"""The tables an emergent_misalignment experiment's steps write (registered by alignlab.kinds)."""

import pyarrow as pa

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()

SCHEMAS = {
    # every prompt: coding requests (probe "code", with both solutions), the self-report and the
    # free-form questions
    "em_items": pa.schema(
        [
            ("item_id", _str), ("probe", _str), ("split", _str), ("family", _str), ("prompt", _str),
            ("insecure", _str), ("secure", _str),
        ]
    ),
    "em_samples": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("replicate", _i64), ("probe", _str), ("item_id", _str),
            ("family", _str), ("sample_idx", _i64), ("seed", _i64), ("prompt", _str), ("response", _str),
            ("expected_number", _f64), ("finish_reason", _str), ("model", _str), ("adapter", _str),
        ]
    ),
    # one row per sample and measure: parsed, insecure (Bandit; `detail` the counted test ids),
    # security_number, names_insecurity, misaligned_choice (`detail` the aligned option's
    # log-probability margin)
    "em_judgments": pa.schema(
        [
            ("arm", _str), ("replicate", _i64), ("probe", _str), ("item_id", _str), ("family", _str),
            ("sample_idx", _i64), ("measure", _str), ("value", _f64), ("parse_ok", _bool), ("detail", _str),
        ]
    ),
    "em_metrics": pa.schema(
        [
            ("experiment", _str), ("arm", _str), ("measure", _str), ("replicates", _i64), ("n", _i64),
            ("value", _f64), ("lo", _f64), ("hi", _f64), ("replicate_values", pa.list_(_f64)),
        ]
    ),
}

ROW_CHECKS = {
    "em_items": ("item_id", ("prompt",)),
}
