"""The model_diff experiment kind: the steps its rules run (rules/model_diff.smk).

texts -> (merge each adapter pair into the base: finetune.merge_adapter) -> an SAE trained on the
base's activations at one layer -> per pair: weight change per tensor, residual-stream cosine
per layer, the SAE scored on base and fine-tune, and a per-layer figure -> a table ranking the
pairs by how far they moved, and a summary. The measurements are in model_diff.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import yaml

from alignlab import artifacts
from alignlab.seeds import derive_seed
from alignlab.transformer import load_model, pad_id

# The package files this module reads (see codedeps: editing one reruns the steps that run it).
DATA_FILES = ("data/diff_texts.yaml",)

TEXTS_FILE = Path(__file__).parent / "data" / "diff_texts.yaml"


def _column(path: str, column: str, key: str) -> list[str]:
    """The non-empty texts of a table's column (CSV / JSONL / Parquet)."""
    from alignlab.tables import read_file

    df = read_file(Path(path))
    if column not in df.columns:
        raise ValueError(f"{key}: '{column}' is not a column of {path} ({df.columns})")
    return [str(t) for t in df[column].to_list() if t is not None and str(t).strip()]


def make_texts(*, texts: dict, experiment: str, out: str) -> None:
    """The first `texts.n` texts of the packaged set or the file, after dropping every text that
    appears in a `texts.exclude` table (held-out documents: e.g. exclude a fine-tune's training
    set); a `split` column marks which train the SAE (`sae_train`) and which score it (`eval`);
    all of them compare activations."""
    if texts["source"] == "packaged":
        pool = yaml.safe_load(TEXTS_FILE.read_text())["texts"]
    else:
        pool = _column(texts["path"], texts["column"], "texts.column")
    excluded: set[str] = set()
    for i, ex in enumerate(texts.get("exclude") or []):
        excluded |= {t.strip() for t in _column(ex["path"], ex["column"], f"texts.exclude.{i}.column")}
    kept = [t for t in pool if t.strip() not in excluded]
    if excluded:
        print(f"texts: {len(pool) - len(kept)} of {len(pool)} texts dropped (found in texts.exclude), {len(kept)} left")
    n = min(texts["n"], len(kept))
    if n < 4:
        raise ValueError(f"texts: need at least 4 non-empty texts, found {len(kept)}"
                         + (f" after dropping {len(pool) - len(kept)} found in texts.exclude" if excluded else ""))
    n_train = max(1, min(n - 1, round(n * texts["sae_train_share"])))
    rows = [{"text_id": f"t{i:04d}", "split": "sae_train" if i < n_train else "eval", "text": t}
            for i, t in enumerate(kept[:n])]
    artifacts.write_table(rows, out, "md_texts", params=texts)


def _texts(path: str, split: str | None = None) -> list[str]:
    df = artifacts.read_table(path, "md_texts")
    if split is not None:
        df = df.filter(pl.col("split") == split)
    return df["text"].to_list()


def merge(*, model_dir: str, adapter_dir: str, out_dir: str) -> None:
    from alignlab import timings
    from alignlab.artifacts import atomic_dir
    from alignlab.finetune import merge_adapter

    # in the base's own dtype: the weights the adapter does not touch stay bit-identical, so
    # every change measured is the adapter's
    with timings.timer("merge adapter"), atomic_dir(out_dir) as tmp:
        merge_adapter(model_dir, adapter_dir, str(tmp), dtype="auto")


def make_reference(*, model_dir: str, tuned_dir: str, seed: int, experiment: str, reference: str,
                   out_dir: str) -> None:
    """A size-matched random reference: the base folder with every tensor moved in a random
    direction by the Frobenius norm the fine-tune `tuned_dir` moved it (diff.size_matched_perturbation;
    seeded from the config seed, the experiment and the reference's name), written as one
    safetensors file beside a copy of the base's other files (config, tokenizer)."""
    import shutil

    from safetensors.torch import save_file

    from alignlab import timings
    from alignlab.artifacts import atomic_dir
    from alignlab.kinds.model_diff import diff as md

    with timings.timer("load model (weights only)"):
        base_state, tuned_state = md.load_state_dict(model_dir), md.load_state_dict(tuned_dir)
    with timings.timer("size-matched perturbation"):
        state = md.size_matched_perturbation(base_state, tuned_state, derive_seed(seed, experiment, "reference", reference))
    with atomic_dir(out_dir) as tmp:
        for f in Path(model_dir).iterdir():
            if f.is_file() and not f.name.endswith(".safetensors") and f.name != "model.safetensors.index.json":
                shutil.copy2(f, Path(tmp) / f.name)
        save_file({k: v.contiguous() for k, v in state.items()}, str(Path(tmp) / "model.safetensors"),
                  metadata={"format": "pt"})


def bootstrap_seed(seed: int, experiment: str) -> int:
    """One seed for the experiment's bootstrap over texts: every pair gets the same resampled
    texts, so the differences between pairs are paired."""
    return derive_seed(seed, experiment, "bootstrap")


def _forward_timer(stage: str, ids):
    """Times a block of forward passes over `ids` (token lists), counting their tokens."""
    from alignlab import timings

    return timings.timer(f"forward ({stage})", items=len(ids), prompt_tokens=sum(len(i) for i in ids))


def sae_layer(model, configured: int | None) -> int:
    from alignlab.kinds.model_diff.diff import decoder_layers

    n = len(decoder_layers(model))
    layer = n // 2 if configured is None else configured
    if not 0 <= layer < n:
        raise ValueError(f"sae.layer: {layer} is out of range (the model has {n} decoder layers, 0-{n - 1})")
    return layer


def train_sae(*, texts_path: str, model_dir: str, sae_cfg: dict, texts_cfg: dict, batch_size: int, seed: int,
              experiment: str, device: str, out: str, log_path: str) -> None:
    """Train the SAE on the base's output of the configured layer over the `sae_train` texts;
    save it (torch) and a one-row train log. Its L0 (mean active features per token on those
    texts) is checked against `sae.l0_range`: outside it, the log's `l0_in_range` is false and
    the summary flags the SAE, or with `l0_action: fail` the step fails, naming the key."""
    import torch

    from alignlab import timings
    from alignlab.kinds.model_diff import diff as md

    tokenizer, model = load_model(model_dir, device)
    layer = sae_layer(model, sae_cfg["layer"])
    ids = md.encode(tokenizer, _texts(texts_path, "sae_train"), texts_cfg["max_length"])
    with _forward_timer("activations", ids):
        acts = md.layer_activations(model, ids, layer, batch_size, pad_id(tokenizer), skip_first=True)
    s = derive_seed(seed, experiment, "sae")
    with timings.timer("SAE training"):
        sae, log = md.train_sae(acts, sae_cfg["d_hidden"], l1=sae_cfg["l1"], steps=sae_cfg["steps"],
                                batch_size=sae_cfg["batch_size"], learning_rate=sae_cfg["learning_rate"],
                                tied=sae_cfg["tied"], seed=s)
    fit = md.variance_explained(sae, acts)
    in_range = md.l0_in_range(fit["l0"], sae_cfg.get("l0_range"))
    if in_range is False and sae_cfg.get("l0_action") == "fail":
        lo, hi = sae_cfg["l0_range"]
        raise ValueError(f"sae.l0_range: the SAE trained at layer {layer} has L0 {fit['l0']:.1f} active features "
                         f"per token (of {sae_cfg['d_hidden']}), outside [{lo}, {hi}]; raise sae.l1 for a "
                         "sparser SAE, lower it for a denser one (or set sae.l0_action: flag)")
    lo, hi = sae_cfg.get("l0_range") or (None, None)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(out) as tmp:
        torch.save({"state_dict": sae.state_dict(), "d_in": int(acts.shape[1]), "d_hidden": sae_cfg["d_hidden"],
                    "tied": sae_cfg["tied"], "layer": layer}, tmp)
    artifacts.write_table([{
        "experiment": experiment, "layer": layer, "n_tokens": int(acts.shape[0]), "steps": log.steps,
        "final_mse": log.final_mse, "final_l0": log.final_l0, "variance_explained": fit["variance_explained"],
        "seed": s, "l0": fit["l0"], "l0_lo": lo, "l0_hi": hi, "l0_in_range": in_range,
    }], log_path, "md_sae_log", params=sae_cfg)
    print(f"SAE at layer {layer}: {acts.shape[0]} tokens, variance explained on its training data "
          f"{fit['variance_explained']:.3f}, L0 {fit['l0']:.1f}"
          + ("" if in_range is None else f" ({'inside' if in_range else 'OUTSIDE'} sae.l0_range [{lo}, {hi}])"))


def load_sae(path: str):
    import torch

    from alignlab.kinds.model_diff.diff import SparseAutoencoder

    saved = torch.load(path, map_location="cpu", weights_only=True)
    sae = SparseAutoencoder(saved["d_in"], saved["d_hidden"], tied=saved["tied"])
    sae.load_state_dict(saved["state_dict"])
    sae.eval()
    return sae, int(saved["layer"])


def compare(*, texts_path: str, base_dir: str, tuned_dir: str, sae_path: str, texts_cfg: dict, batch_size: int,
            experiment: str, pair: str, device: str, weights_out: str, activations_out: str, sae_out: str,
            figure: str, seed: int = 0, bootstrap: dict | None = None, text_cosines_out: str | None = None,
            features_out: str | None = None) -> None:
    """One pair: weight change per tensor, residual-stream cosine per layer on every text (with
    a bootstrap interval over texts per layer, and the per-text sums the aggregate step
    resamples), the SAE scored on base and fine-tune on the `eval` texts (with each feature's
    activation frequency and mean on both), and the per-layer figure."""
    bootstrap = bootstrap or {"n_resamples": 1000, "confidence": 0.95}
    from alignlab import timings
    from alignlab.kinds.model_diff import diff as md
    from alignlab.kinds.model_diff import figures

    params = {"texts": texts_cfg, "batch_size": batch_size, "pair": pair, "bootstrap": bootstrap, "seed": seed}
    with timings.timer("load model (weights only)"):
        base_state, tuned_state = md.load_state_dict(base_dir), md.load_state_dict(tuned_dir)
    weights = md.weight_stats(base_state, tuned_state)
    del base_state, tuned_state
    artifacts.write_table([{"experiment": experiment, "pair": pair, **r} for r in weights], weights_out,
                          "md_weights", params=params)

    tokenizer, base = load_model(base_dir, device)
    _, tuned = load_model(tuned_dir, device)
    pad = pad_id(tokenizer)
    ids_all = md.encode(tokenizer, _texts(texts_path), texts_cfg["max_length"])
    with _forward_timer("cosine, both models", ids_all):
        per_text = md.text_cosines(base, tuned, ids_all, batch_size, pad)
    acts = md.layer_rows(per_text)
    idx = md.bootstrap_indices(len(ids_all), bootstrap["n_resamples"], bootstrap_seed(seed, experiment))
    boot = md.resampled_layer_means(per_text["sums"], per_text["counts"], idx)
    for k, r in enumerate(acts):
        r["ci_lo"], r["ci_hi"] = md.percentile_interval(boot[:, k], bootstrap["confidence"])
    artifacts.write_table([{"experiment": experiment, "pair": pair, **r} for r in acts], activations_out,
                          "md_activations", params=params)
    if text_cosines_out is not None:
        artifacts.write_table(
            [{"experiment": experiment, "pair": pair, "text": i, "layer": k, "n_tokens": int(per_text["counts"][i]),
              "sum_cosine": float(per_text["sums"][i, k]), "min_cosine": float(per_text["mins"][i, k])}
             for i in range(len(ids_all)) for k in range(per_text["sums"].shape[1])],
            text_cosines_out, "md_text_cosines", params=params)

    sae, layer = load_sae(sae_path)
    ids_eval = md.encode(tokenizer, _texts(texts_path, "eval"), texts_cfg["max_length"])
    rows, features = [], {}
    for which, model in (("base", base), ("tuned", tuned)):
        with _forward_timer(f"SAE on {which}", ids_eval):
            layer_acts = md.layer_activations(model, ids_eval, layer, batch_size, pad, skip_first=True)
            fit = md.variance_explained(sae, layer_acts)
            features[which] = md.feature_stats(sae, layer_acts)
            loss = md.loss_with_sae(model, sae, layer, ids_eval, batch_size, pad)
        rows.append({"experiment": experiment, "pair": pair, "model": which, "layer": layer, **fit, **loss})
    artifacts.write_table(rows, sae_out, "md_sae", params=params)
    if features_out is not None:
        fb, ft = features["base"], features["tuned"]
        artifacts.write_table(
            [{"experiment": experiment, "pair": pair, "feature": j, "frequency_base": float(fb["frequency"][j]),
              "frequency_tuned": float(ft["frequency"][j]), "mean_base": float(fb["mean_activation"][j]),
              "mean_tuned": float(ft["mean_activation"][j])} for j in range(int(fb["frequency"].numel()))],
            features_out, "md_features", params=params)

    figures.model_diff_figure(pl.DataFrame(md.weight_stats_by_layer(weights)), pl.DataFrame(acts), figure,
                            title=f"{experiment}: {pair} against the base, per layer")


def pair_metrics(weights: pl.DataFrame, activations: pl.DataFrame, sae: pl.DataFrame,
                 features: pl.DataFrame | None = None) -> dict[str, Any]:
    """One pair's headline numbers (see the md_metrics schema; the intervals, the ranking's
    differences and the reference columns are the aggregate step's)."""
    import torch

    from alignlab.kinds.model_diff import diff as md

    w = list(weights.iter_rows(named=True))
    a = list(activations.iter_rows(named=True))
    by_model = {r["model"]: r for r in sae.iter_rows(named=True)}
    out = {
        "weight_relative_change": md.total_relative_change(w),
        "max_layer_relative_change": max(r["relative_change"] for r in md.weight_stats_by_layer(w) if r["layer"] >= 0),
        "min_weight_cosine": min(r["cosine"] for r in w),
        "global_mean_cosine": md.global_mean_cosine(a),
        "last_layer_cosine": a[-1]["mean_cosine"],
        "sae_layer": by_model["base"]["layer"],
        "sae_ve_base": by_model["base"]["variance_explained"],
        "sae_ve_tuned": by_model["tuned"]["variance_explained"],
        "loss_rise_base": by_model["base"]["loss_rise"],
        "loss_rise_tuned": by_model["tuned"]["loss_rise"],
        "sae_l0_base": by_model["base"]["l0"],
        "sae_l0_tuned": by_model["tuned"]["l0"],
    }
    if features is not None:
        f = features.sort("feature")
        t = md.feature_transfer(torch.tensor(f["frequency_base"].to_list()), torch.tensor(f["frequency_tuned"].to_list()))
        out |= {"features_dead_base": t["dead_on_base"], "features_dead_tuned": t["dead_on_tuned"],
                "features_new_tuned": t["new_on_tuned"], "feature_frequency_corr": t["frequency_correlation"]}
    return out


def per_text_arrays(table: pl.DataFrame):
    """(sums (n_texts, n_hidden) float64, counts (n_texts,)) from an md_text_cosines table."""
    import torch

    t = table.sort(["text", "layer"])
    n_texts, n_layers = t["text"].n_unique(), t["layer"].n_unique()
    if t.height != n_texts * n_layers:
        raise ValueError(f"md_text_cosines: {t.height} rows, expected {n_texts} texts x {n_layers} layers")
    sums = torch.tensor(t["sum_cosine"].to_list(), dtype=torch.float64).view(n_texts, n_layers)
    counts = torch.tensor(t.filter(pl.col("layer") == 0)["n_tokens"].to_list(), dtype=torch.long)
    return sums, counts


def aggregate(*, weights: list[str], activations: list[str], sae: list[str], model_info: str,
              sources: dict[str, str], experiment: str, metrics_out: str, replication_out: str,
              summary_out: str, base: str | None = None, more_steps: list[str] | None = None,
              text_cosines: list[str] | None = None, features: list[str] | None = None,
              sae_log: str | None = None, references: dict[str, dict] | None = None, seed: int = 0,
              bootstrap: dict | None = None) -> None:
    """Rank the pairs by how far they moved (global mean activation cosine, lowest first; ties by
    weight change) and write the table and the summary. `sources` names each pair's fine-tune,
    in the order of the pairs' tables in `weights`, `activations`, `sae`, `text_cosines` and
    `features`. A pair whose fine-tune is the base model itself (`model:<base>`) is the identity
    control the summary checks; `more_steps` ([fewer, more]) the pair of fine-tunes whose weight
    change it compares; `references` (name -> {like, tolerance}) the size-matched random
    references, checked against their real pair's per-tensor change. Intervals: a bootstrap over
    texts (`bootstrap`: n_resamples, confidence; seeded from `seed`), the same resampled texts
    for every pair, so adjacent pairs' difference is a paired interval. Each fine-tune's global
    mean cosine goes beside the replication card's published ones."""
    from alignlab import replication
    from alignlab.kinds.model_diff import diff as md
    from alignlab.kinds.model_diff import summary

    bootstrap = bootstrap or {"n_resamples": 1000, "confidence": 0.95}
    references = references or {}
    n = len(sources)
    text_cosines = text_cosines or []
    features = features or [None] * n
    if not n == len(weights) == len(activations) == len(sae) == len(text_cosines) == len(features):
        raise ValueError(f"{n} pairs but {len(weights)}, {len(activations)}, {len(sae)}, {len(text_cosines)}, "
                         f"{len(features)} tables")
    rows, weight_rows, sums, counts = [], {}, {}, None
    for pair, w, a, s, tc, f in zip(sources, weights, activations, sae, text_cosines, features):
        wt = artifacts.read_table(w, "md_weights")
        weight_rows[pair] = list(wt.iter_rows(named=True))
        m = pair_metrics(wt, artifacts.read_table(a, "md_activations"), artifacts.read_table(s, "md_sae"),
                         None if f is None else artifacts.read_table(f, "md_features"))
        sums[pair], c = per_text_arrays(artifacts.read_table(tc, "md_text_cosines"))
        if counts is not None and (counts.shape != c.shape or not bool((counts == c).all())):
            raise ValueError(f"{tc}: pair '{pair}' was measured on other texts than the pairs before it")
        counts = c
        rows.append({"experiment": experiment, "pair": pair, "source": sources[pair], **m})
    idx = md.bootstrap_indices(int(counts.numel()), bootstrap["n_resamples"], bootstrap_seed(seed, experiment))
    for r in rows:
        layer_boot = md.resampled_layer_means(sums[r["pair"]], counts, idx)
        r["global_mean_cosine_lo"], r["global_mean_cosine_hi"] = md.percentile_interval(
            layer_boot[:, 1:].mean(1), bootstrap["confidence"])
        r["last_layer_cosine_lo"], r["last_layer_cosine_hi"] = md.percentile_interval(
            layer_boot[:, -1], bootstrap["confidence"])
        r["n_texts"] = int(counts.numel())
        ref = references.get(r["pair"])
        r["reference_of"] = None if ref is None else ref["like"]
        r["size_gap"] = r["size_matched"] = None
        if ref is not None:
            r["size_gap"] = md.size_match(weight_rows[ref["like"]], weight_rows[r["pair"]])["max_relative_gap"]
            r["size_matched"] = md.size_matched(weight_rows[ref["like"]], weight_rows[r["pair"]], ref["tolerance"])
        for k in ("features_dead_base", "features_dead_tuned", "features_new_tuned", "feature_frequency_corr"):
            r.setdefault(k, None)
    rows.sort(key=lambda r: (r["global_mean_cosine"], -r["weight_relative_change"]))
    diffs = md.adjacent_differences([r["pair"] for r in rows], sums, counts, idx, bootstrap["confidence"])
    for i, (r, d) in enumerate(zip(rows, diffs), 1):
        r["rank"] = i
        r |= {"next_pair": d["next"], "diff_next_lo": d["lo"], "diff_next_hi": d["hi"], "distinct_from_next": d["distinct"]}
    params = {"pairs": sources, "references": references, "bootstrap": bootstrap, "seed": seed}
    written = artifacts.write_table(rows, metrics_out, "md_metrics", params=params)
    identity = [p for p, src in sources.items() if base is not None and src == f"model:{base}"]
    model = artifacts.read_table(model_info, "model").row(0, named=True)
    figures = [{"metric": f"{r['pair']}: global_mean_cosine", "value": r["global_mean_cosine"],
                "lo": r["global_mean_cosine_lo"], "hi": r["global_mean_cosine_hi"], "card_metric": "global_mean_cosine",
                "card_settings": ("base_vs_finetuned_residual_activations",)}
               for r in rows if r["pair"] not in identity and r["pair"] not in references]
    card = replication.compare(experiment, "model_diff", figures, model["model"], model["n_parameters"])
    artifacts.write_table(card, replication_out, "replication", params={"pairs": sources})
    log = None if sae_log is None else artifacts.read_table(sae_log, "md_sae_log").row(0, named=True)
    with artifacts.atomic_path(summary_out) as tmp:
        tmp.write_text(summary.model_diff_markdown(experiment, pl.from_arrow(written), identity, more_steps, card,
                                                   references=references, sae_log=log, bootstrap=bootstrap)
                       + "\n")
