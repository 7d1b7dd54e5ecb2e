"""The per-pair figure: per layer, the weight change and the residual-stream cosine."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from alignlab.plots import save


def model_diff_figure(weights_by_layer: pl.DataFrame, activations: pl.DataFrame, path, title: str) -> Path:
    """Two panels over decoder layers: the relative weight change of each layer (all its
    tensors), and the mean token cosine of the residual stream after each layer (0: the
    embeddings), with its bootstrap interval over texts when given (ci_lo, ci_hi)."""
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax_w, ax_a = fig.subplots(2, 1, sharex=True)
    w = weights_by_layer.filter(pl.col("layer") >= 0).sort("layer")
    ax_w.bar(w["layer"].to_list(), w["relative_change"].to_list(), color="#4c72b0")
    ax_w.set_ylabel("||W' - W|| / ||W||")
    ax_w.set_title("weights: relative change per decoder layer")
    a = activations.sort("layer")
    # hidden state k is the output of decoder layer k - 1; draw it at that layer
    x = [k - 1 for k in a["layer"].to_list()]
    ax_a.plot(x, a["mean_cosine"].to_list(), marker="o", color="#dd8452")
    if "ci_lo" in a.columns:  # the bootstrap interval over texts
        ax_a.fill_between(x, a["ci_lo"].to_list(), a["ci_hi"].to_list(), color="#dd8452", alpha=0.25, linewidth=0)
    ax_a.set_ylabel("mean token cosine")
    ax_a.set_xlabel("decoder layer (-1: embeddings)")
    ax_a.set_title("residual stream: base vs fine-tune")
    lo = min(a["ci_lo" if "ci_lo" in a.columns else "mean_cosine"].to_list() or [1.0])
    ax_a.set_ylim(min(lo - 0.02, 0.9), 1.005)
    fig.suptitle(title)
    return save(fig, path)
