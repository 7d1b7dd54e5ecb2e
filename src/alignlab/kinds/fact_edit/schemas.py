"""The tables a fact_edit experiment's steps write (registered with artifacts by alignlab.kinds)."""

import pyarrow as pa

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()

SCHEMAS = {
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
}
