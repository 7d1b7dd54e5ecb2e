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


def make_texts(*, texts: dict, experiment: str, out: str) -> None:
    """The first `texts.n` texts of the packaged set or the file; a `split` column marks which
    train the SAE (`sae_train`) and which score it (`eval`); all of them compare activations."""
    if texts["source"] == "packaged":
        pool = yaml.safe_load(TEXTS_FILE.read_text())["texts"]
    else:
        from alignlab.tables import read_file

        df = read_file(Path(texts["path"]))
        if texts["column"] not in df.columns:
            raise ValueError(f"texts.column: '{texts['column']}' is not a column of {texts['path']} ({df.columns})")
        pool = [str(t) for t in df[texts["column"]].to_list() if t is not None and str(t).strip()]
    n = min(texts["n"], len(pool))
    if n < 4:
        raise ValueError(f"texts: need at least 4 non-empty texts, found {len(pool)}")
    n_train = max(1, min(n - 1, round(n * texts["sae_train_share"])))
    rows = [{"text_id": f"t{i:04d}", "split": "sae_train" if i < n_train else "eval", "text": t}
            for i, t in enumerate(pool[:n])]
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
    save it (torch) and a one-row train log."""
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
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(out) as tmp:
        torch.save({"state_dict": sae.state_dict(), "d_in": int(acts.shape[1]), "d_hidden": sae_cfg["d_hidden"],
                    "tied": sae_cfg["tied"], "layer": layer}, tmp)
    artifacts.write_table([{
        "experiment": experiment, "layer": layer, "n_tokens": int(acts.shape[0]), "steps": log.steps,
        "final_mse": log.final_mse, "final_l0": log.final_l0, "variance_explained": fit["variance_explained"],
        "seed": s,
    }], log_path, "md_sae_log", params=sae_cfg)
    print(f"SAE at layer {layer}: {acts.shape[0]} tokens, variance explained on its training data "
          f"{fit['variance_explained']:.3f}, L0 {fit['l0']:.1f}")


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
            figure: str) -> None:
    """One pair: weight change per tensor, residual-stream cosine per layer on every text, the
    SAE scored on base and fine-tune on the `eval` texts, and the per-layer figure."""
    from alignlab import timings
    from alignlab.kinds.model_diff import diff as md
    from alignlab.kinds.model_diff import figures

    params = {"texts": texts_cfg, "batch_size": batch_size, "pair": pair}
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
        acts = md.activation_cosine(base, tuned, ids_all, batch_size, pad)
    artifacts.write_table([{"experiment": experiment, "pair": pair, **r} for r in acts], activations_out,
                          "md_activations", params=params)

    sae, layer = load_sae(sae_path)
    ids_eval = md.encode(tokenizer, _texts(texts_path, "eval"), texts_cfg["max_length"])
    rows = []
    for which, model in (("base", base), ("tuned", tuned)):
        with _forward_timer(f"SAE on {which}", ids_eval):
            fit = md.variance_explained(sae, md.layer_activations(model, ids_eval, layer, batch_size, pad,
                                                                  skip_first=True))
            loss = md.loss_with_sae(model, sae, layer, ids_eval, batch_size, pad)
        rows.append({"experiment": experiment, "pair": pair, "model": which, "layer": layer, **fit, **loss})
    artifacts.write_table(rows, sae_out, "md_sae", params=params)

    figures.model_diff_figure(pl.DataFrame(md.weight_stats_by_layer(weights)), pl.DataFrame(acts), figure,
                            title=f"{experiment}: {pair} against the base, per layer")


def pair_metrics(weights: pl.DataFrame, activations: pl.DataFrame, sae: pl.DataFrame) -> dict[str, Any]:
    """One pair's headline numbers (see the md_metrics schema)."""
    from alignlab.kinds.model_diff import diff as md

    w = list(weights.iter_rows(named=True))
    a = list(activations.iter_rows(named=True))
    by_model = {r["model"]: r for r in sae.iter_rows(named=True)}
    return {
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
    }


def aggregate(*, weights: list[str], activations: list[str], sae: list[str], model_info: str,
              sources: dict[str, str], experiment: str, metrics_out: str, replication_out: str,
              summary_out: str, base: str | None = None, more_steps: list[str] | None = None) -> None:
    """Rank the pairs by how far they moved (global mean activation cosine, lowest first; ties by
    weight change) and write the table and the summary. `sources` names each pair's fine-tune,
    in the order of the pairs' tables in `weights`, `activations` and `sae`. A pair whose fine-tune is the base
    model itself (`model:<base>`) is the identity control the summary checks; `more_steps`
    ([fewer, more]) the pair of fine-tunes whose weight change it compares. Each fine-tune's
    global mean cosine goes beside the replication card's published ones."""
    from alignlab import replication
    from alignlab.kinds.model_diff import summary

    rows = []
    if not len(sources) == len(weights) == len(activations) == len(sae):
        raise ValueError(f"{len(sources)} pairs but {len(weights)}, {len(activations)}, {len(sae)} tables")
    for pair, w, a, s in zip(sources, weights, activations, sae):
        m = pair_metrics(artifacts.read_table(w, "md_weights"), artifacts.read_table(a, "md_activations"),
                         artifacts.read_table(s, "md_sae"))
        rows.append({"experiment": experiment, "pair": pair, "source": sources[pair], **m})
    rows.sort(key=lambda r: (r["global_mean_cosine"], -r["weight_relative_change"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    written = artifacts.write_table(rows, metrics_out, "md_metrics", params={"pairs": sources})
    identity = [p for p, src in sources.items() if base is not None and src == f"model:{base}"]
    model = artifacts.read_table(model_info, "model").row(0, named=True)
    figures = [{"metric": f"{r['pair']}: global_mean_cosine", "value": r["global_mean_cosine"], "lo": float("nan"),
                "hi": float("nan"), "card_metric": "global_mean_cosine",
                "card_settings": ("base_vs_finetuned_residual_activations",)}
               for r in rows if r["pair"] not in identity]
    card = replication.compare(experiment, "model_diff", figures, model["model"], model["n_parameters"])
    artifacts.write_table(card, replication_out, "replication", params={"pairs": sources})
    with artifacts.atomic_path(summary_out) as tmp:
        tmp.write_text(summary.model_diff_markdown(experiment, pl.from_arrow(written), identity, more_steps, card)
                       + "\n")
