"""What fact_edit's rules compute from its config: the tables each penalty setting's job writes
(used by rules/fact_edit.smk)."""

from __future__ import annotations

from typing import Any

from alignlab.paths import RESULTS


def tables(name: str, exp: Any, table: str) -> list[str]:
    """One table (runs, layers, overlap or probes) of every penalty setting, in the config's order."""
    return [f"{RESULTS}/{name}/settings/{setting}/{table}.parquet" for setting in exp.penalties]
