"""Self-awareness figures: per arm, the behaviour rate beside the self-report, 95% intervals."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from alignlab.plots import finite, save
from alignlab.stats import metric_row


def _panel(ax, metrics: pl.DataFrame, task: str, series: list[tuple[str, str, str, float]], xlabel: str) -> None:
    """Grouped horizontal bars: per arm of `task`, one bar per (label, measure, target, scale)."""
    arms = list(dict.fromkeys(metrics.filter(pl.col("task") == task)["arm"].to_list()))
    height = 0.8 / max(len(series), 1)
    colors = ["#0072b2", "#e69f00", "#56b4e9", "#009e73", "#cc79a7", "#d55e00"]
    for j, (label, measure, target, scale) in enumerate(series):
        for i, arm in enumerate(arms):
            m = metric_row(metrics, task=task, arm=arm, measure=measure, target=target)
            if m is None or not finite(m["value"]):
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
    matches the word (behaviour), and self-reports that name the rule (anywhere, and in the first
    line) or the word, with 95% intervals."""
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.add_subplot()
    _panel(ax, metrics, "acrostic", [
        (f"answers spell {word}", "spells", word, 100), (f"answers spell {hard_word}", "spells", hard_word, 100),
        (f"line initials matching {word}, %", "line_accuracy", word, 100),
        (f"self-report names the rule ({word})", "names_rule", word, 100),
        (f"... names the rule in its first line ({word})", "names_rule_early", word, 100),
        (f"self-report names {hard_word}", "names_word", hard_word, 100),
    ], "% (95% interval over prompts)")
    ax.set_title(title, loc="left", fontsize=11)
    return save(fig, path)


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
    return save(fig, path)
