"""Figure helpers every kind's plots use: finite checks, percentages, and an atomic PNG save (a
killed job never leaves a figure that looks finished)."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure  # a bare Figure renders with Agg, no pyplot state


def finite(x) -> bool:
    return x is not None and math.isfinite(x)


def pct(x) -> float:
    return 100 * x if finite(x) else 0.0


def save(fig: Figure, path) -> Path:
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
