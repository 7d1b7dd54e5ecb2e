"""The tables a model_diff experiment's steps write (registered with artifacts by alignlab.kinds)."""

import pyarrow as pa

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()

SCHEMAS = {
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
            ("min_cosine", _f64), ("ci_lo", _f64), ("ci_hi", _f64),
        ]
    ),
    # per text (its row number in texts.parquet) and hidden-state index: the sum and minimum of
    # the token cosines and the token count, what the bootstrap over texts resamples
    "md_text_cosines": pa.schema(
        [
            ("experiment", _str), ("pair", _str), ("text", _i64), ("layer", _i64), ("n_tokens", _i64),
            ("sum_cosine", _f64), ("min_cosine", _f64),
        ]
    ),
    # per SAE feature on the eval texts: the share of tokens it is active on, and its mean
    # activation over all tokens, on the base and on the fine-tune
    "md_features": pa.schema(
        [
            ("experiment", _str), ("pair", _str), ("feature", _i64), ("frequency_base", _f64),
            ("frequency_tuned", _f64), ("mean_base", _f64), ("mean_tuned", _f64),
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
            ("final_l0", _f64), ("variance_explained", _f64), ("seed", _i64), ("l0", _f64), ("l0_lo", _f64),
            ("l0_hi", _f64), ("l0_in_range", _bool),
        ]
    ),
    "md_metrics": pa.schema(
        [
            ("experiment", _str), ("pair", _str), ("source", _str), ("weight_relative_change", _f64),
            ("max_layer_relative_change", _f64), ("min_weight_cosine", _f64), ("global_mean_cosine", _f64),
            ("last_layer_cosine", _f64), ("sae_layer", _i64), ("sae_ve_base", _f64), ("sae_ve_tuned", _f64),
            ("loss_rise_base", _f64), ("loss_rise_tuned", _f64), ("rank", _i64),
            # issue 19: intervals over texts, the paired difference with the next-ranked pair
            # (its cosine minus this one's; distinct: the interval excludes 0), the reference a
            # row is (reference_of: the real pair it is size-matched to; size_gap: the largest
            # per-tensor relative gap in change norm), the SAE's L0 and its feature transfer
            ("n_texts", _i64), ("global_mean_cosine_lo", _f64), ("global_mean_cosine_hi", _f64),
            ("last_layer_cosine_lo", _f64), ("last_layer_cosine_hi", _f64), ("next_pair", _str),
            ("diff_next_lo", _f64), ("diff_next_hi", _f64), ("distinct_from_next", _bool),
            ("reference_of", _str), ("size_gap", _f64), ("size_matched", _bool),
            ("sae_l0_base", _f64), ("sae_l0_tuned", _f64), ("features_dead_base", _i64),
            ("features_dead_tuned", _i64), ("features_new_tuned", _i64), ("feature_frequency_corr", _f64),
        ]
    ),
}

# The column that names a row, and text columns that must not be empty (see artifacts.read_table).
ROW_CHECKS = {
    "md_texts": ("text_id", ("text",)),
}
