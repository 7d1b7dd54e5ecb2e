"""The change by layer, per penalty setting: the edit's minus the null edit's."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from alignlab.plots import save


def fact_edit_figure(layers: pl.DataFrame, path, title: str) -> Path:
    """Mean (over edits) relative change of each trained layer's MLP: the fact change, edit minus
    null edit ||W_edit - W_null|| / ||W|| (solid), and the edit's own change (dotted), one colour
    per penalty setting."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for i, setting in enumerate(dict.fromkeys(layers["setting"].to_list())):
        m = (layers.filter(pl.col("setting") == setting).group_by("layer")
             .agg(pl.col("relative_change").mean(), pl.col("fact_change").mean()).sort("layer"))
        colour = f"C{i}"
        ax.plot(m["layer"].to_list(), m["fact_change"].to_list(), marker="o", color=colour,
                label=f"{setting}: fact change")
        ax.plot(m["layer"].to_list(), m["relative_change"].to_list(), linestyle=":", color=colour,
                label=f"{setting}: edit")
    ax.set_ylim(bottom=0)
    ax.set_xticks(sorted(set(layers["layer"].to_list())))
    ax.set_xlabel("decoder layer")
    ax.set_ylabel("MLP ||W' - W|| / ||W|| (mean over edits)")
    ax.legend(title="penalty", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle(title)
    return save(fig, path)
