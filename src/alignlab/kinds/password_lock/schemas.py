"""The tables a password_lock experiment's steps write (registered with artifacts by alignlab.kinds)."""

import pyarrow as pa

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()

SCHEMAS = {
    # password_lock: the problems (disjoint splits), every greedy answer, the metrics
    "pl_problems": pa.schema(
        [("problem_id", _str), ("split", _str), ("a", _i64), ("b", _i64), ("strong", _i64), ("weak", _i64)]
    ),
    # `unlock`: base | locked | strong | weak; `condition`: password | none | decoy;
    # `replicate`: the arm's training replicate (0 for the base model and the toy setting)
    "pl_predictions": pa.schema(
        [
            ("experiment", _str), ("setting", _str), ("arm", _str), ("replicate", _i64), ("unlock", _str), ("n_unlock", _i64),
            ("condition", _str), ("problem_id", _str), ("a", _i64), ("b", _i64), ("prompt", _str),
            ("response", _str), ("answer", _i64), ("correct", _bool), ("weak", _bool), ("seed", _i64),
            ("model", _str), ("adapter", _str),
        ]
    ),
    # measure: accuracy | weak_rate (the answer is the weak policy's); per arm over its
    # replicates, `replicate_values` each replicate's
    "pl_metrics": pa.schema(
        [
            ("experiment", _str), ("setting", _str), ("arm", _str), ("unlock", _str), ("n_unlock", _i64),
            ("condition", _str), ("measure", _str), ("replicates", _i64), ("n", _i64), ("value", _f64), ("lo", _f64),
            ("hi", _f64), ("interval", _str), ("replicate_values", pa.list_(_f64)),
        ]
    ),
    # the weak grid (weak_grid.py): per (setting, epochs, problems: memorized | neighbours | rest),
    # pooled over draws and replicates; `draw_values` each draw-replicate's accuracy
    "pl_weak_grid": pa.schema(
        [
            ("experiment", _str), ("setting", _str), ("epochs", _i64), ("subset", _str), ("draws", _i64),
            ("replicates", _i64), ("n", _i64), ("accuracy", _f64), ("lo", _f64), ("hi", _f64), ("weak_rate", _f64),
            ("draw_values", pa.list_(_f64)),
        ]
    ),
}

# The column that names a row, and text columns that must not be empty (see artifacts.read_table).
ROW_CHECKS = {
    "pl_problems": ("problem_id", ()),
}
