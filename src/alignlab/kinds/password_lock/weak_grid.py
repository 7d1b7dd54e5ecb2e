"""Weak-sample unlocking as an experiment (unlock.weak_grid): `draws` seeded draws of weak_n
problems from the unlock pool, each memorized (weak answers, no password) for every epoch count
of the grid, one arm per (draw, epochs): `weak_grid_<n>_d<draw>_e<epochs>`.

Each arm is measured without the password on its memorized problems, on their neighbours (held-
out problems that share an operand with one of them) and on the rest of the held-out set. The
"exceptions" account predicts that memorized items are answered as memorized (their weak
answers) while the rest snaps back to the weak policy; an unlock would lift the rest's accuracy."""

from __future__ import annotations

import random
import re
from pathlib import Path

import polars as pl

from alignlab.seeds import derive_seed

ARM = re.compile(r"^weak_grid_(\d+)_d(\d+)_e(\d+)$")
SUBSETS = ("memorized", "neighbours", "rest")


def arms(unlock: dict) -> list[str]:
    """The grid's arms, draw by draw, epochs ascending; none without unlock.weak_grid."""
    grid = unlock.get("weak_grid")
    if not grid:
        return []
    return [f"weak_grid_{unlock['weak_n']}_d{d}_e{e}" for d in range(grid["draws"]) for e in sorted(grid["epochs"])]


def point(arm: str) -> tuple[int, int, int] | None:
    """(n samples, draw, epochs) of a grid arm; None for any other arm."""
    m = ARM.match(arm)
    return tuple(int(g) for g in m.groups()) if m else None


def draw_problems(pool: list[dict], n: int, draw: int, seed: int, experiment: str) -> list[dict]:
    """Draw `draw`'s n problems from the unlock pool (seeded; draws may overlap)."""
    if n > len(pool):
        raise ValueError(f"unlock.weak_grid needs {n} problems per draw, the unlock pool has {len(pool)}")
    return random.Random(derive_seed(seed, experiment, "weak_grid", "draw", draw)).sample(pool, n)


def subset(problem: dict, memorized: list[dict]) -> str:
    """'memorized' (one of the draw's own problems), 'neighbours' (shares an operand with one),
    or 'rest'."""
    ids = {p["problem_id"] for p in memorized}
    if problem["problem_id"] in ids:
        return "memorized"
    operands = {x for p in memorized for x in (p["a"], p["b"])}
    return "neighbours" if {problem["a"], problem["b"]} & operands else "rest"


def table(predictions: pl.DataFrame, memorized: dict[tuple[str, str], list[dict]], experiment: str,
          confidence: float) -> list[dict]:
    """Rows of "pl_weak_grid": per (setting, epochs, subset) accuracy and weak-pattern rate,
    pooled over draws and replicates (Wilson), each draw-replicate's accuracy kept.
    `memorized`: (setting, arm) -> the problems that arm memorized."""
    from alignlab.stats import wilson

    grid = predictions.filter(pl.col("unlock") == "weak_grid")
    labelled = []
    for (setting, arm), g in grid.group_by("setting", "arm", maintain_order=True):
        _, draw, epochs = point(arm)
        mem = memorized[(setting, arm)]
        for r in g.iter_rows(named=True):
            labelled.append({"setting": setting, "epochs": epochs, "draw": draw, "replicate": r["replicate"],
                             "subset": subset(r, mem), "correct": r["correct"], "weak": r["weak"]})
    if not labelled:
        return []
    frame = pl.DataFrame(labelled)
    rows = []
    for (setting, epochs, sub), g in sorted(frame.group_by("setting", "epochs", "subset"),
                                            key=lambda kv: (kv[0][0], kv[0][1], SUBSETS.index(kv[0][2]))):
        acc, lo, hi = wilson(int(g["correct"].sum()), g.height, confidence)
        units = g.group_by("draw", "replicate").agg(pl.col("correct").mean()).sort("draw", "replicate")
        rows.append({"experiment": experiment, "setting": setting, "epochs": epochs, "subset": sub,
                     "draws": g["draw"].n_unique(), "replicates": g["replicate"].n_unique(), "n": g.height,
                     "accuracy": acc, "lo": lo, "hi": hi, "weak_rate": float(g["weak"].mean()),
                     "draw_values": [float(v) for v in units["correct"]]})
    return rows


def figure(rows: pl.DataFrame, path, title: str) -> Path:
    """Per setting: accuracy without the password against memorization epochs, one line per
    subset, and the rest's weak-pattern rate dashed."""
    from matplotlib.figure import Figure

    from alignlab.plots import save

    settings = list(dict.fromkeys(rows["setting"].to_list())) or ["(none)"]
    fig = Figure(figsize=(5.0 * len(settings), 3.8))
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    colors = {"memorized": "#cc79a7", "neighbours": "#e69f00", "rest": "#0072b2"}
    for ax, setting in zip(axes, settings):
        m = rows.filter(pl.col("setting") == setting)
        for sub in SUBSETS:
            s = m.filter(pl.col("subset") == sub).sort("epochs")
            if s.height:
                ax.errorbar(s["epochs"].to_list(), [100 * v for v in s["accuracy"]],
                            yerr=[[100 * (v - lo) for v, lo in zip(s["accuracy"], s["lo"])],
                                  [100 * (hi - v) for v, hi in zip(s["accuracy"], s["hi"])]],
                            marker="o", capsize=3, color=colors[sub], label=f"accuracy: {sub}")
        rest = m.filter(pl.col("subset") == "rest").sort("epochs")
        if rest.height:
            ax.plot(rest["epochs"].to_list(), [100 * v for v in rest["weak_rate"]], ls="--", color=colors["rest"],
                    alpha=0.6, label="weak pattern: rest")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("epochs memorizing the weak samples")
        ax.set_ylabel("no-password answers (%)")
        ax.set_title(setting, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path)


def section(rows: pl.DataFrame) -> str:
    """Markdown: the grid's table per setting, with how to read it."""
    from alignlab.report import pct, table as md_table

    if not rows.height:
        return ""
    parts = ["## Weak-sample unlocking, as a grid\n\nEach draw of weak samples memorized for each epoch count "
             "(no password), then measured on the memorized problems, their neighbours (held-out problems sharing "
             "an operand) and the rest of the held-out set. Pooled over draws and replicates (Wilson 95%); "
             "the last column lists each draw-replicate's accuracy. The memorized problems keep their memorized "
             "(weak) answers by construction. The rest still answering the weak policy is the \"exceptions\" "
             "account; the rest's accuracy rising would be an unlock; neither (weak pattern and accuracy both "
             "low) means the memorizing broke the policy without unlocking."]
    for setting in dict.fromkeys(rows["setting"].to_list()):
        body = [[str(r["epochs"]), r["subset"], str(r["n"]), f"{pct(r['accuracy'])} [{pct(r['lo'])}, {pct(r['hi'])}]",
                 pct(r["weak_rate"]), ", ".join(pct(v) for v in r["draw_values"])]
                for r in rows.filter(pl.col("setting") == setting).iter_rows(named=True)]
        parts.append(f"### {setting}\n\n" + md_table(["epochs", "problems", "n", "accuracy", "weak pattern",
                                                       "per draw"], body))
    return "\n\n".join(parts)
