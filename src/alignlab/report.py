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
