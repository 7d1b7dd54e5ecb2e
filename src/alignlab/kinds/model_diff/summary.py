"""The Markdown summary of a model_diff experiment: the pairs ranked by how far they moved, with
intervals over texts, the pairs the ranking cannot tell apart, each real pair beside its
size-matched random reference, and the SAE's sparsity and feature-level transfer."""

from __future__ import annotations

import polars as pl

from alignlab import replication
from alignlab.report import finite, number, table
from alignlab.stats import metric_row

VERDICT = {True: "PASSED", False: "FAILED", None: "MISSING"}


def model_diff_identity_passed(metrics: pl.DataFrame, pair: str) -> bool | None:
    """The identity control: the base against itself has global mean cosine exactly 1, no
    weight change, the same SAE scores on both sides, and no SAE feature dead or new."""
    r = metric_row(metrics, pair=pair)
    if r is None:
        return None
    return bool(r["global_mean_cosine"] == 1.0 and r["weight_relative_change"] == 0.0
                and r["sae_ve_base"] == r["sae_ve_tuned"] and r["sae_l0_base"] == r["sae_l0_tuned"]
                and not r.get("features_dead_tuned") and not r.get("features_new_tuned"))


def model_diff_more_steps_passed(metrics: pl.DataFrame, fewer: str, more: str) -> bool | None:
    """The fine-tune trained for more steps moved the weights more (relative change over the
    model) than the one trained for fewer; None if either pair is absent."""
    a, b = metric_row(metrics, pair=fewer), metric_row(metrics, pair=more)
    if a is None or b is None:
        return None
    return bool(b["weight_relative_change"] > a["weight_relative_change"])


def model_diff_reference_passed(metrics: pl.DataFrame, reference: str) -> bool | None:
    """The reference control: the random reference's change matches its real pair's in every
    tensor (within its tolerance; `size_matched`, set by the aggregate step)."""
    r = metric_row(metrics, pair=reference)
    return None if r is None or r["size_matched"] is None else bool(r["size_matched"])


def model_diff_sae_sparsity_passed(sae_log: dict | None) -> bool | None:
    """The SAE's L0 on its training texts lies in sae.l0_range (None: no range configured)."""
    return None if sae_log is None or sae_log.get("l0_in_range") is None else bool(sae_log["l0_in_range"])


def indistinct_pairs(metrics: pl.DataFrame) -> list[dict]:
    """The adjacent pairs in the ranking whose paired interval of the difference contains 0."""
    return [r for r in metrics.sort("rank").iter_rows(named=True) if r["distinct_from_next"] is False]


COS = "{:.6f}"   # fine-tunes live close to 1: six decimals
DIFF = "{:+.2e}"


def _ci(lo, hi, fmt=COS) -> str:
    return f"[{number(lo, fmt)}, {number(hi, fmt)}]" if finite(lo) and finite(hi) else ""


def _cos(r, key="global_mean_cosine") -> str:
    if r[key] == 1.0 and r[f"{key}_lo"] == 1.0 and r[f"{key}_hi"] == 1.0:
        return "1 (exactly)"
    return f"{number(r[key], COS)} {_ci(r[f'{key}_lo'], r[f'{key}_hi'])}".strip()


def _next(r) -> str:
    if r["distinct_from_next"] is None:
        return ""
    word = "yes" if r["distinct_from_next"] else "**no**"
    return f"{word} {_ci(r['diff_next_lo'], r['diff_next_hi'], DIFF)}"


def drop_ratio(real: dict, reference: dict) -> float:
    """How many times the real pair's cosine drop (1 - global mean cosine) its size-matched random
    reference's is; NaN when the reference did not move the activations at all."""
    ref_drop = 1.0 - reference["global_mean_cosine"]
    return (1.0 - real["global_mean_cosine"]) / ref_drop if ref_drop > 0 else float("nan")


def model_diff_markdown(experiment: str, metrics: pl.DataFrame, identity: list[str] | None = None,
                        more_steps: list[str] | None = None, card: list[dict] | None = None,
                        references: dict[str, dict] | None = None, sae_log: dict | None = None,
                        bootstrap: dict | None = None) -> str:
    """The pairs ranked by how far the fine-tune moved the model (lowest global mean activation
    cosine first) with bootstrap intervals over texts and whether each is told apart from the
    next (paired interval of the difference), the weight change and the SAE transfer; the
    controls' verdicts: identity (each pair in `identity`), more steps (`more_steps` = [fewer,
    more]), each size-matched reference in `references` (name -> {like, tolerance}) and the
    SAE's L0 range (`sae_log`, the SAE's train log row)."""
    references = references or {}
    bootstrap = bootstrap or {"n_resamples": 1000, "confidence": 0.95}
    level = f"{100 * bootstrap['confidence']:.0f}%"
    ranked = metrics.sort("rank")
    rows = [
        [str(r["rank"]), f"`{r['pair']}`", r["source"], _cos(r), _cos(r, "last_layer_cosine"), _next(r),
         number(r["weight_relative_change"], "{:.2e}"), number(r["max_layer_relative_change"], "{:.2e}"),
         f"{number(r['sae_ve_base'], '{:.3f}')} / {number(r['sae_ve_tuned'], '{:.3f}')}",
         f"{number(r['loss_rise_base'], '{:.3f}')} / {number(r['loss_rise_tuned'], '{:.3f}')}"]
        for r in ranked.iter_rows(named=True)
    ]
    layer = metrics["sae_layer"][0] if metrics.height else "?"
    n_texts = metrics["n_texts"][0] if metrics.height else "?"
    controls = [
        f"**Identity control (`{p}`) {VERDICT[model_diff_identity_passed(metrics, p)]}**: the base against "
        "itself has global mean cosine exactly 1, no weight change, the same SAE scores on both sides and no "
        "SAE feature dead or new."
        for p in identity or []
    ]
    if more_steps:
        fewer, more = more_steps
        changes = {p: metric_row(metrics, pair=p) for p in more_steps}
        shown = ", ".join(f"`{p}` {number(r['weight_relative_change'], '{:.2e}')}" for p, r in changes.items() if r)
        controls.append(f"**More-steps check {VERDICT[model_diff_more_steps_passed(metrics, fewer, more)]}**: "
                        f"`{more}` (more steps) moved the weights more than `{fewer}` (fewer steps, same "
                        f"recipe); weight change {shown}.")
    for name, ref in references.items():
        r = metric_row(metrics, pair=name)
        gap = "" if r is None else f" (largest gap {number(r['size_gap'], '{:.1%}')})"
        controls.append(f"**Size-matched reference `{name}` {VERDICT[model_diff_reference_passed(metrics, name)]}**: "
                        f"every tensor's change norm ||W_ref - W|| is within {ref['tolerance']:.0%} of "
                        f"`{ref['like']}`'s{gap}, and no tensor changed on one side only.")
    sparsity = model_diff_sae_sparsity_passed(sae_log)
    if sparsity is not None:
        controls.append(
            f"**SAE sparsity check {VERDICT[sparsity]}**: L0 {number(sae_log['l0'], '{:.1f}')} active features per "
            f"token on its training texts, target [{number(sae_log['l0_lo'], '{:g}')}, "
            f"{number(sae_log['l0_hi'], '{:g}')}] (sae.l0_range)."
            + ("" if sparsity else " The SAE numbers below are those of an SAE outside its target sparsity."))

    ties = indistinct_pairs(metrics)
    tie_text = (
        "The ranking cannot tell apart: "
        + "; ".join(f"`{r['pair']}` and `{r['next_pair']}` (difference {_ci(r['diff_next_lo'], r['diff_next_hi'], DIFF)})"
                    for r in ties) + "."
        if ties else "Every pair is told apart from the next one in the ranking."
    )
    sections = [
        f"# Model diff: {experiment}",
        *controls,
        "Pairs ranked by how far the fine-tune moved the model: rank 1 has the lowest global mean cosine "
        "(the per-token cosine of base and fine-tune residual streams, averaged over tokens, then over "
        "decoder layers; Kutsyk et al. report 0.6691 for Gemma-2b vs a Python fine-tune and 0.9648 for "
        f"Mistral-7b vs MetaMath). Intervals: {level}, a bootstrap over the {n_texts} texts "
        f"({bootstrap['n_resamples']} resamples, seeded). *Told apart from next*: the paired {level} interval "
        "of the next pair's global mean cosine minus this one's, on the same resampled texts; **no** when it "
        "contains 0. Weight change: ||W' - W|| / ||W|| over every tensor, and the largest decoder layer's. "
        f"SAE: trained on the base's output of decoder layer {layer}, scored on held-out texts: variance "
        "explained and the rise in next-token loss (nats) when its reconstruction replaces that layer's "
        "output, base / fine-tune.",
        table(["rank", "pair", "fine-tune", "global mean cosine", "last layer cosine", "told apart from next",
               "weight change", "largest layer change", "SAE variance explained", "SAE loss rise"], rows),
        tie_text,
    ]
    if references:
        ref_rows = []
        for name, ref in references.items():
            real, rand = metric_row(metrics, pair=ref["like"]), metric_row(metrics, pair=name)
            if real is None or rand is None:
                continue
            ref_rows.append([f"`{ref['like']}`", _cos(real), f"`{name}`", _cos(rand),
                             number(drop_ratio(real, rand), "{:.1f}x"),
                             number(real["weight_relative_change"], "{:.2e}"),
                             number(rand["weight_relative_change"], "{:.2e}")])
        sections += [
            "## Beside a random change of the same size\n\nEach real pair beside a random perturbation of the base "
            "whose change has the same Frobenius norm in every tensor (seeded): how far the residual stream "
            "moves under any change of that size. *Drop ratio*: the pair's 1 - cosine over the reference's; "
            "a fine-tune far above 1x moved the activations more than its size alone explains.",
            table(["pair", "global mean cosine", "reference", "reference's global mean cosine", "drop ratio",
                   "weight change", "reference's weight change"], ref_rows),
        ]
    feat_rows = [
        [f"`{r['pair']}`", f"{number(r['sae_l0_base'], '{:.1f}')} / {number(r['sae_l0_tuned'], '{:.1f}')}",
         str(r["features_dead_base"]) if r["features_dead_base"] is not None else "–",
         str(r["features_dead_tuned"]) if r["features_dead_tuned"] is not None else "–",
         str(r["features_new_tuned"]) if r["features_new_tuned"] is not None else "–",
         number(r["feature_frequency_corr"], "{:.3f}")]
        for r in ranked.iter_rows(named=True)
    ]
    sections += [
        "## SAE features, base vs fine-tune\n\nOn the held-out texts: L0 (mean active features per token), "
        "features never active on the base, features active on the base but never on the fine-tune (dead), "
        "never on the base but active on the fine-tune (new), and the correlation of the features' activation "
        "frequencies (per feature: `pairs/<pair>/features.parquet`).",
        table(["pair", "L0 base / fine-tune", "dead on base", "dead on fine-tune", "new on fine-tune",
               "frequency correlation"], feat_rows),
        "Per-layer tables and figures: `pairs/<pair>/{weights,activations,text_cosines,sae,features}.parquet`, "
        "`pairs/<pair>/layers.png`.",
    ]
    if card is not None:
        sections.append("## Beside the published results\n\nReplicates: 1 (each fine-tune as given; no interval over "
                        "training seeds; the intervals are over texts).\n\n"
                        + replication.summary_section(card, _card_value))
    return "\n\n".join(sections) + "\n"


def _card_value(value, lo, hi, metric: str) -> str:
    return f"{number(value)} {_ci(lo, hi, '{:.4f}')}".strip()
