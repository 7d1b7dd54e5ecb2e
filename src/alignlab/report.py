"""Formatting for the Markdown summaries every kind writes: percentages, intervals, p-values and tables."""

from __future__ import annotations

import math
from typing import Iterable


def finite(x) -> bool:
    return x is not None and math.isfinite(x)


def pct(x) -> str:
    return f"{100 * x:.1f}%" if finite(x) else "n/a"


def pp(x) -> str:
    return f"{100 * x:+.1f} pp" if finite(x) else "n/a"


def interval(lo, hi, fmt) -> str:
    return f"[{fmt(lo)}, {fmt(hi)}]" if finite(lo) and finite(hi) else "n/a"


def p_value(p) -> str:
    if not finite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def number(x, fmt: str = "{:.4f}") -> str:
    return fmt.format(x) if finite(x) else "–"


def metric_value(row: dict | None, scale: float = 100, unit: str = "%") -> str:
    """A metrics row as `value [lo, hi] (n=...)`, scaled (percent by default); a dash when missing."""
    if row is None or not finite(row["value"]):
        return "–"
    return f"{row['value'] * scale:.1f}{unit} [{row['lo'] * scale:.1f}, {row['hi'] * scale:.1f}] (n={row['n']})"


def contrasts_table(contrasts, items: str = "items", first: str = "contrast") -> str:
    """A kind's "contrasts" table: estimate, interval, p and Holm-adjusted p, the minimum
    detectable size, items and replicates per side, and each control's verdict (blank for a
    comparison that is not a control)."""
    rows = []
    for r in contrasts.iter_rows(named=True):
        verdict = ("" if r["passed"] is None else
                   f"{'PASSED' if r['passed'] else 'FAILED'} (needs >= {pp(r['margin'])}, CI above 0)")
        rows.append([r["contrast"], pp(r["estimate"]), interval(r["lo"], r["hi"], pp), p_value(r["p_value"]),
                     p_value(r["p_holm"]), pp(r["min_detectable"]), str(r["n_items"]), r["replicates"], verdict])
    return table([first, "estimate", "95% CI", "p", "p (Holm)", "detectable at 80% power", items,
                  "replicates", "control"], rows)


def replicates_line(counts: dict[str, int], items: str = "items") -> str:
    """How many training replicates each arm has, and what the intervals therefore cover."""
    arms = ", ".join(f"`{a}`" for a in counts)
    if all(n == 1 for n in counts.values()):
        return (f"Replicates: 1 per arm ({arms}): each adapter was trained once, so intervals are "
                f"over {items} only and leave out training-seed noise.")
    return (f"Replicates (adapters trained with derived seeds; intervals resample replicates, then {items}): "
            + ", ".join(f"`{a}` {n}" for a, n in counts.items()) + ".")
