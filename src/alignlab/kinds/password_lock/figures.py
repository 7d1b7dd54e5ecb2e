"""The unlocking figure: no-password accuracy vs number of unlocking samples."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from alignlab.plots import finite, save


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
            if row and finite(row["value"]):
                ax.axhline(100 * row["value"], color=color, ls="--", lw=1.2, label=f"{label} ({100 * row['value']:.0f}%)")
                ax.axhspan(100 * row["lo"], 100 * row["hi"], color=color, alpha=0.08)
        strong = m.filter((pl.col("unlock") == "strong") & (pl.col("condition") == "none")).sort("n_unlock")
        if strong.height:
            x = strong["n_unlock"].to_list()
            y = [100 * v for v in strong["value"]]
            err = [[100 * (v - lo) for v, lo in zip(strong["value"], strong["lo"])],
                   [100 * (hi - v) for v, hi in zip(strong["value"], strong["hi"])]]
            ax.errorbar(x, y, yerr=err, marker="o", color="#0072b2", capsize=3, label="unlocked: n strong samples")
        never = m.filter((pl.col("unlock") == "never_strong") & (pl.col("condition") == "none")).sort("n_unlock")
        if never.height:
            ax.plot(never["n_unlock"].to_list(), [100 * v for v in never["value"]], marker="^", ls=":", color="#999999",
                    label="never-capable, then n strong samples")
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
    return save(fig, path)
