"""The compliance figure, in the style of Greenblatt et al. 2024 (Fig. 1): per arm, free-tier and
paid-tier compliance as horizontal bars, alignment-faking reasoning hatched inside the free bar."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure  # a bare Figure renders with Agg, no pyplot state
from matplotlib.patches import Patch

from alignlab.stats import metric_row

COLORS = {"free": "#e69f00", "paid": "#56b4e9", "af": "#c0392b"}
BAR_HEIGHT = 0.36
OFFSETS = {"free": -BAR_HEIGHT / 2, "paid": BAR_HEIGHT / 2}  # free on top within each arm row


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def _pct(x) -> float:
    return 100 * x if _finite(x) else 0.0


def _gap_label(gap: dict | None) -> str:
    if gap is None or not _finite(gap["gap"]):
        return "gap: n/a"
    text = f"gap (free − paid) {100 * gap['gap']:+.0f} pp"
    if _finite(gap["gap_lo"]):
        text += f"\n95% CI [{100 * gap['gap_lo']:+.0f}, {100 * gap['gap_hi']:+.0f}]"
    if _finite(gap["p_value"]):
        text += f", p={gap['p_value']:.2g}"
    return text


def _draw_tier(ax, y: float, row: dict) -> None:
    tier = row["tier"]
    rate = row["compliance"]
    if not _finite(rate):
        ax.text(1, y, "no verdicts", va="center", fontsize=8, color="0.4")
        return
    err = [[_pct(rate) - _pct(row["compliance_lo"])], [_pct(row["compliance_hi"]) - _pct(rate)]]
    ax.barh(y, _pct(rate), height=BAR_HEIGHT, color=COLORS[tier], edgecolor="white",
            xerr=err, error_kw={"ecolor": "0.2", "capsize": 3, "lw": 1})
    if tier == "free" and _finite(row["af_rate"]):
        ax.barh(y, _pct(row["af_rate"]), height=BAR_HEIGHT, color="none",
                edgecolor=COLORS["af"], hatch="///", lw=0)
    label = f"{_pct(rate):.0f}%  (n={row['n']})"
    end = max(_pct(rate), _pct(row["compliance_hi"]))
    if end < 85:
        ax.text(end + 1.5, y, label, va="center", fontsize=8, color="0.25")
    else:  # no room right of the error bar: write inside the bar, left of its interval
        ax.text(_pct(row["compliance_lo"]) - 1.5, y, label, va="center", ha="right", fontsize=8,
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
    return _save(fig, path)


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=150)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# ---- self_awareness: per arm, the behaviour rate beside the self-report, 95% intervals ------

def _panel(ax, metrics: pl.DataFrame, task: str, series: list[tuple[str, str, str, float]], xlabel: str) -> None:
    """Grouped horizontal bars: per arm of `task`, one bar per (label, measure, target, scale)."""
    arms = list(dict.fromkeys(metrics.filter(pl.col("task") == task)["arm"].to_list()))
    height = 0.8 / max(len(series), 1)
    colors = ["#0072b2", "#e69f00", "#56b4e9", "#009e73", "#cc79a7"]
    for j, (label, measure, target, scale) in enumerate(series):
        for i, arm in enumerate(arms):
            m = metric_row(metrics, task=task, arm=arm, measure=measure, target=target)
            if m is None or not _finite(m["value"]):
                continue
            y = i - 0.4 + height * (j + 0.5)
            err = [[(m["value"] - m["lo"]) * scale], [(m["hi"] - m["value"]) * scale]]
            ax.barh(y, m["value"] * scale, height=height * 0.9, color=colors[j % len(colors)],
                    xerr=err, capsize=2, label=label if i == 0 else None)
            ax.text(m["hi"] * scale + 1.5, y, f"{m['value'] * scale:.0f}", va="center", fontsize=7)
    ax.set_yticks(range(len(arms)), arms)
    ax.invert_yaxis()
    ax.set_xlim(0, 112)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower right", fontsize=7)


def acrostic_figure(metrics: pl.DataFrame, word: str, hard_word: str, path, title: str) -> Path:
    """Per arm: answers whose line initials spell each word and the share of lines whose initial
    matches the word (behaviour), and self-reports that name the rule or the word, with 95%
    intervals."""
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.add_subplot()
    _panel(ax, metrics, "acrostic", [
        (f"answers spell {word}", "spells", word, 100), (f"answers spell {hard_word}", "spells", hard_word, 100),
        (f"line initials matching {word}, %", "line_accuracy", word, 100),
        (f"self-report names the rule ({word})", "names_rule", word, 100),
        (f"self-report names {hard_word}", "names_word", hard_word, 100),
    ], "% of samples (95% interval)")
    ax.set_title(title, loc="left", fontsize=11)
    return _save(fig, path)


def risk_figure(metrics: pl.DataFrame, path, title: str) -> Path:
    """Per arm: risky choices on held-out pairs, the self-reported liking of risk (0-100) and
    one-word self-descriptions from the risk-seeking list, with 95% intervals."""
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax = fig.add_subplot()
    _panel(ax, metrics, "risk", [
        ("risky choices, %", "risky_choice", "", 100), ("self-reported risk liking, 0-100", "self_report_number", "", 1),
        ("one-word self-description is risk-seeking, %", "seeking_word", "", 100),
    ], "% or 0-100 score (95% interval)")
    ax.set_title(title, loc="left", fontsize=11)
    return _save(fig, path)


# ---- password_lock: no-password accuracy vs number of unlocking samples ---------------------

def password_lock_figure(metrics: pl.DataFrame, path, title: str) -> Path:
    """Per setting, a panel: no-password accuracy (95% interval) after unlocking with n strong
    samples against n; the weak-sample arm as a marker at its n; the locked model's accuracy
    with and without the password as horizontal reference lines."""
    acc = metrics.filter(pl.col("measure") == "accuracy")
    settings = list(dict.fromkeys(acc["setting"].to_list())) or ["(none)"]
    fig = Figure(figsize=(5.2 * len(settings), 4.0))
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    for ax, setting in zip(axes, settings):
        m = acc.filter(pl.col("setting") == setting)

        def level(arm, condition):
            rows = m.filter((pl.col("arm") == arm) & (pl.col("condition") == condition))
            return rows.row(0, named=True) if rows.height else None

        for (arm, condition), color, label in (
            (("locked", "password"), "#009e73", "locked, with password"),
            (("locked", "none"), "#d55e00", "locked, no password"),
        ):
            row = level(arm, condition)
            if row and _finite(row["value"]):
                ax.axhline(100 * row["value"], color=color, ls="--", lw=1.2, label=f"{label} ({100 * row['value']:.0f}%)")
                ax.axhspan(100 * row["lo"], 100 * row["hi"], color=color, alpha=0.08)
        strong = m.filter((pl.col("unlock") == "strong") & (pl.col("condition") == "none")).sort("n_unlock")
        if strong.height:
            x = strong["n_unlock"].to_list()
            y = [100 * v for v in strong["value"]]
            err = [[100 * (v - lo) for v, lo in zip(strong["value"], strong["lo"])],
                   [100 * (hi - v) for v, hi in zip(strong["value"], strong["hi"])]]
            ax.errorbar(x, y, yerr=err, marker="o", color="#0072b2", capsize=3, label="unlocked: n strong samples")
        weak = m.filter((pl.col("unlock") == "weak") & (pl.col("condition") == "none"))
        for row in weak.iter_rows(named=True):
            ax.errorbar([row["n_unlock"]], [100 * row["value"]],
                        yerr=[[100 * (row["value"] - row["lo"])], [100 * (row["hi"] - row["value"])]],
                        marker="s", color="#cc79a7", capsize=3, ls="none",
                        label=f"unlocked: {row['n_unlock']} weak samples, many epochs")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("unlocking samples (no password)")
        ax.set_ylabel("accuracy without password (%)")
        ax.set_title(setting, fontsize=10)
        ax.legend(fontsize=7, loc="center right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


# ---- model_diff: per layer, the weight change and the residual-stream cosine --------------

def model_diff_figure(weights_by_layer: pl.DataFrame, activations: pl.DataFrame, path, title: str) -> Path:
    """Two panels over decoder layers: the relative weight change of each layer (all its
    tensors), and the mean token cosine of the residual stream after each layer (0: the
    embeddings)."""
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax_w, ax_a = fig.subplots(2, 1, sharex=True)
    w = weights_by_layer.filter(pl.col("layer") >= 0).sort("layer")
    ax_w.bar(w["layer"].to_list(), w["relative_change"].to_list(), color="#4c72b0")
    ax_w.set_ylabel("||W' - W|| / ||W||")
    ax_w.set_title("weights: relative change per decoder layer")
    a = activations.sort("layer")
    # hidden state k is the output of decoder layer k - 1; draw it at that layer
    ax_a.plot([k - 1 for k in a["layer"].to_list()], a["mean_cosine"].to_list(), marker="o", color="#dd8452")
    ax_a.set_ylabel("mean token cosine")
    ax_a.set_xlabel("decoder layer (-1: embeddings)")
    ax_a.set_title("residual stream: base vs fine-tune")
    lo = min(a["mean_cosine"].to_list() or [1.0])
    ax_a.set_ylim(min(lo - 0.02, 0.9), 1.005)
    fig.suptitle(title)
    return _save(fig, path)


# ---- fact_edit: the change by layer, per penalty setting -----------------------------------

def fact_edit_figure(layers: pl.DataFrame, path, title: str) -> Path:
    """Mean (over edits) relative change of each trained layer's MLP, one line per penalty
    setting."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for setting in dict.fromkeys(layers["setting"].to_list()):
        m = (layers.filter(pl.col("setting") == setting).group_by("layer").agg(pl.col("relative_change").mean())
             .sort("layer"))
        ax.plot(m["layer"].to_list(), m["relative_change"].to_list(), marker="o", label=setting)
    ax.set_xticks(sorted(set(layers["layer"].to_list())))
    ax.set_xlabel("decoder layer")
    ax.set_ylabel("MLP ||W' - W|| / ||W|| (mean over edits)")
    ax.set_ylim(bottom=0)
    ax.legend(title="penalty", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle(title)
    return _save(fig, path)
