"""The experiment kinds, and the registry they add themselves to.

A kind is a package in this folder (or a module a config names under `kind_modules`) whose
import calls `register` once with a `Kind`: the name a config's `kind:` selects, its config
class, the tables its steps write, the files its experiments end in, and its rule file. Shared
code asks this registry, never a kind by name. `load()` imports every package here (and the
modules a config names) and returns the registered kinds.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence


class KindError(ValueError):
    pass


@dataclass(frozen=True)
class Kind:
    name: str  # what a config's `kind:` says
    # Its experiment config, a subclass of config.ExperimentConfig, as "module:Class": imported
    # when a config is validated, not by the kind's steps (so editing it reruns no step).
    config: str
    # The files `snakemake` builds for one experiment: f(experiment name, its config) -> paths.
    targets: Callable[[str, Any], list[str]]
    folder: Path  # the kind's package folder (templates, data, report captions in report/)
    schemas: Mapping[str, Any] = field(default_factory=dict)  # table name -> pyarrow schema
    # Table name -> (the column naming a row, text columns that must not be empty), checked on read.
    row_checks: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    report_tables: tuple[str, ...] = ("metrics",)  # tables the HTML report shows as CSV
    rules: str | None = None  # its Snakemake rule file; None: rules/<name>.smk of the workflow


_KINDS: dict[str, Kind] = {}
# The packages here in the order they joined the project (the order configs' error messages list
# them in); a new package in this folder is found without being listed.
BUILTIN = ("alignment_faking", "self_awareness", "password_lock", "model_diff", "fact_edit", "emergent_misalignment")


def register(kind: Kind) -> Kind:
    from alignlab import artifacts

    known = _KINDS.get(kind.name)
    if known is not None and known != kind:
        raise KindError(f"two kinds are called '{kind.name}'")
    if known is None:
        artifacts.register_schemas(kind.name, kind.schemas, kind.row_checks)
        _KINDS[kind.name] = kind
    return kind


def load(modules: Sequence[str] = ()) -> dict[str, Kind]:
    """Every registered kind, by name: the packages in this folder, then `modules`."""
    found = sorted(info.name for info in pkgutil.iter_modules(__path__) if info.ispkg)
    for name in [*(b for b in BUILTIN if b in found), *(f for f in found if f not in BUILTIN)]:
        importlib.import_module(f"{__name__}.{name}")
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise KindError(f"cannot import '{module}': {err}") from None
    return registered()


def registered() -> dict[str, Kind]:
    """The registered kinds: the built-in ones in BUILTIN's order (whichever was imported
    first), then the others in the order they registered."""
    order = {name: i for i, name in enumerate(BUILTIN)}
    names = sorted(_KINDS, key=lambda n: order.get(n, len(order)))  # stable: ties keep registration order
    return {name: _KINDS[name] for name in names}


def config_class(kind: Kind) -> type:
    module, _, name = kind.config.partition(":")
    return getattr(importlib.import_module(module), name)
