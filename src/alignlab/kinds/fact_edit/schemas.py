"""The tables a fact_edit experiment's steps write (registered with artifacts by alignlab.kinds)."""

import pyarrow as pa

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()

# Per-edit measures that the metrics table averages per setting (in this order).
_RUN_MEANS = [
    ("mean_steps_taken", _f64), ("share_reached", _f64), ("efficacy", _f64), ("paraphrase_efficacy", _f64),
    ("specificity", _f64), ("held_out_correct_before", _f64), ("held_out_correct_after", _f64),
    ("held_out_specificity", _f64), ("text_loss_change", _f64), ("share_specific", _f64), ("weight_change", _f64),
    ("moved_weights", _f64), ("moved_neurons", _f64), ("null_weight_change", _f64), ("fact_change", _f64),
    ("null_held_out_specificity", _f64), ("null_text_loss_change", _f64), ("fact_top_share", _f64),
    ("same_subject_specificity", _f64), ("null_same_subject_specificity", _f64), ("mean_train_copies", _f64),
]
# Per-edit measures with a bootstrap interval over edits (facts, and seeds within them): the metrics
# column and the runs column it comes from.
INTERVALS = {
    "efficacy": "efficacy", "paraphrase_efficacy": "paraphrase_efficacy",
    "held_out_specificity": "held_out_specificity", "same_subject_specificity": "same_subject_specificity",
    "text_loss_change": "text_loss_change", "weight_change": "weight_change", "fact_top_share": "fact_top_share",
    "mean_steps_taken": "steps_taken",
}
_INTERVALS = [(f"{m}_{end}", _f64) for m in INTERVALS for end in ("lo", "hi")]
_OVERLAP = [
    ("top_k", _i64), ("n_neurons", _i64), ("chance_overlap", _f64), ("across_seeds", _f64), ("across_facts", _f64),
    ("raw_across_seeds", _f64),
    ("raw_across_facts", _f64), ("null_overlap", _f64),
]

SCHEMAS = {
    # fact_edit: the candidate facts scored on the base (kept ones; held out: never trained on);
    # per edit run its measures beside the null edit's (same recipe, seed and steps, no fact
    # changed) and the fact change ||W_edit - W_null||; per run and trained layer the MLP's
    # relative change, the null edit's, and the fact change; per penalty setting the overlap of the
    # most-changed neurons; per setting the means, with bootstrap intervals (lo, hi) over edits
    "fe_facts": pa.schema(
        [
            ("experiment", _str), ("subject", _str), ("answer", _str), ("n_templates", _i64), ("n_correct", _i64),
            ("kept", _bool), ("held_out", _bool), ("fame", _f64), ("second_answer", _str),
            ("n_second_templates", _i64), ("n_second_correct", _i64), ("second_known", _bool),
        ]
    ),
    "fe_runs": pa.schema(
        [
            ("experiment", _str), ("setting", _str), ("l1", _f64), ("l2", _f64), ("subject", _str), ("answer", _str),
            ("new_answer", _str), ("seed", _i64), ("train_copies", _i64), ("second_known", _bool),
            ("steps_taken", _i64), ("reached", _bool), ("efficacy", _f64),
            ("paraphrase_efficacy", _f64), ("specificity", _f64), ("held_out_correct_before", _f64),
            ("held_out_correct_after", _f64), ("held_out_specificity", _f64), ("text_loss_before", _f64),
            ("text_loss_after", _f64), ("text_loss_change", _f64), ("weight_change", _f64), ("moved_weights", _f64),
            ("moved_neurons", _f64), ("final_loss", _f64), ("null_weight_change", _f64), ("fact_change", _f64),
            ("null_held_out_specificity", _f64), ("null_text_loss_change", _f64), ("fact_top_share", _f64),
            ("same_subject_specificity", _f64), ("null_same_subject_specificity", _f64),
        ]
    ),
    "fe_layers": pa.schema(
        [("experiment", _str), ("setting", _str), ("subject", _str), ("seed", _i64), ("layer", _i64),
         ("relative_change", _f64), ("null_relative_change", _f64), ("fact_change", _f64)]
    ),
    "fe_overlap": pa.schema([("experiment", _str), ("setting", _str), *_OVERLAP]),
    # Every prompt asked after an edit (edit) or the null edit compared with it (null); before:
    # the base's answer where measured (held-out and second facts), else null.
    "fe_probes": pa.schema(
        [("experiment", _str), ("setting", _str), ("subject", _str), ("seed", _i64), ("edit", _str), ("probe", _str),
         ("fact", _str), ("template", _i64), ("prompt", _str), ("expected", _str), ("before", _str), ("answer", _str)]
    ),
    "fe_metrics": pa.schema(
        [
            ("experiment", _str), ("setting", _str), ("l1", _f64), ("l2", _f64), ("n_edits", _i64),
            ("max_steps_taken", _i64), ("n_same_subject", _i64), ("share_same_subject_kept", _f64), *_RUN_MEANS,
            *_INTERVALS, *_OVERLAP,
        ]
    ),
}
