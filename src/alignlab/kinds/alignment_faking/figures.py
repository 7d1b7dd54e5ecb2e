"""The compliance figure, in the style of Greenblatt et al. 2024 (Fig. 1): per arm, free-tier and
paid-tier compliance as horizontal bars, alignment-faking reasoning hatched inside the free bar."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from alignlab.plots import finite, pct, save

COLORS = {"free": "#e69f00", "paid": "#56b4e9", "af": "#c0392b"}
BAR_HEIGHT = 0.36
OFFSETS = {"free": -BAR_HEIGHT / 2, "paid": BAR_HEIGHT / 2}  # free on top within each arm row


def _gap_label(gap: dict | None) -> str:
    if gap is None or not finite(gap["gap"]):
        return "gap: n/a"
    text = f"gap (free − paid) {100 * gap['gap']:+.0f} pp"
    if finite(gap["gap_lo"]):
        text += f"\n95% CI [{100 * gap['gap_lo']:+.0f}, {100 * gap['gap_hi']:+.0f}]"
    if finite(gap["p_value"]):
        text += f", p={gap['p_value']:.2g}"
    return text


def _draw_tier(ax, y: float, row: dict) -> None:
    tier = row["tier"]
    rate = row["compliance"]
    if not finite(rate):
        ax.text(1, y, "no verdicts", va="center", fontsize=8, color="0.4")
        return
    err = [[pct(rate) - pct(row["compliance_lo"])], [pct(row["compliance_hi"]) - pct(rate)]]
    ax.barh(y, pct(rate), height=BAR_HEIGHT, color=COLORS[tier], edgecolor="white",
            xerr=err, error_kw={"ecolor": "0.2", "capsize": 3, "lw": 1})
    if tier == "free" and finite(row["af_rate"]):
        ax.barh(y, pct(row["af_rate"]), height=BAR_HEIGHT, color="none",
                edgecolor=COLORS["af"], hatch="///", lw=0)
    label = f"{pct(rate):.0f}%  (n={row['n']})"
    end = max(pct(rate), pct(row["compliance_hi"]))
    if end < 85:
        ax.text(end + 1.5, y, label, va="center", fontsize=8, color="0.25")
    else:  # no room right of the error bar: write inside the bar, left of its interval
        ax.text(pct(row["compliance_lo"]) - 1.5, y, label, va="center", ha="right", fontsize=8,
                color="black")


def _draw(fig: Figure, metrics: pl.DataFrame, gaps: pl.DataFrame, title: str) -> None:
    arms = metrics["arm"].unique(maintain_order=True).to_list()
    gap_by_arm = {g["arm"]: g for g in gaps.iter_rows(named=True)}
    ax = fig.add_subplot()
    for i, arm in enumerate(arms):
        for row in metrics.filter(pl.col("arm") == arm).iter_rows(named=True):
            if row["tier"] in OFFSETS:
                _draw_tier(ax, i + OFFSETS[row["tier"]], row)
        # x in axes coordinates (just right of the plot), y in data coordinates
        ax.text(1.02, i, _gap_label(gap_by_arm.get(arm)), transform=ax.get_yaxis_transform(),
                va="center", fontsize=9)
    ax.set_yticks(range(len(arms)), arms)
    ax.set_ylim(len(arms) - 0.4, -0.6)  # first arm on top
    ax.set_xlim(0, 100)
    ax.set_xlabel("compliance with harmful queries (%), 95% Wilson interval")
    ax.xaxis.grid(True, color="0.9")
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    handles = [
        Patch(color=COLORS["free"], label="free tier (used for training)"),
        Patch(color=COLORS["paid"], label="paid tier (unmonitored)"),
    ]
    if metrics.filter(pl.col("tier") == "free")["af_rate"].is_not_nan().any():
        handles.append(Patch(facecolor="none", edgecolor=COLORS["af"], hatch="///",
                             label="alignment-faking reasoning (free tier)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False,
               fontsize=8)
    ax.set_title(title, loc="left", fontsize=11)


def compliance_figure(metrics: pl.DataFrame, gaps: pl.DataFrame, path, title: str) -> Path:
    """Save the compliance figure as a PNG at `path`, atomically; returns the path."""
    n_arms = max(metrics["arm"].n_unique(), 1)
    fig = Figure(figsize=(9, 1.3 + 0.85 * n_arms), layout="constrained")
    _draw(fig, metrics, gaps, title)
    return save(fig, path)
