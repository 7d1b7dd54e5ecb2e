"""How a rule runs a step: every rule's script is scripts/step.py, which calls `main`.

`main` imports the function the rule names in `params.step` (a dotted name under alignlab, e.g.
"kinds.<kind>.steps.sample") and calls it with the rule's named inputs, outputs and
params as keyword arguments, under the same names (the `code` input, the source files, and the
`step` param itself are not passed). A function with a `config` argument that the rule does not
fill gets the workflow's whole config (a param would rerun the step on any config change).

Everything the step prints (progress bars, vLLM's and transformers' messages) goes to the log
file, down at the file-descriptor level so child processes' output lands there too. When the
step fails, the user sees one message naming the step, its inputs and the cause, with the full
traceback left in the log. Every step ends its log with a table of where the time went (see
timings.py): its engine start-ups, model loads, generation and training, and the job's wall time.
"""

from __future__ import annotations

import importlib
import inspect
import os
import socket
import sys
import time
import traceback
from typing import Any, Callable

import psutil

from alignlab import timings


def run(snakemake: Any, step: Callable[..., None], **kwargs: Any) -> None:
    rule = snakemake.rule
    log = snakemake.log[0] if snakemake.log else os.devnull
    terminal = os.dup(2)
    with open(log, "w") as fh:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        where = f"on {socket.gethostname()}"
        if os.environ.get("SLURM_JOB_ID"):
            where += f", SLURM job {os.environ['SLURM_JOB_ID']}"
        print(f"alignlab: step '{rule}' {dict(snakemake.wildcards.items())} {where}", flush=True)
        timings.reset()
        try:
            step(**kwargs)
            timings.record(timings.JOB, time.time() - psutil.Process().create_time())
            done = timings.records()
            print(f"\nalignlab: where the time went\n{timings.table(done)}\n{timings.json_lines(done)}")
        except Exception as exc:  # noqa: BLE001 - every failure gets the same clear report
            traceback.print_exc()
            sys.stderr.flush()
            inputs = ", ".join(str(p) for p in snakemake.input) or "(none)"
            message = (
                f"\nalignlab: step '{rule}' failed: {type(exc).__name__}: {exc}\n"
                f"  wildcards: {dict(snakemake.wildcards.items())}\n"
                f"  inputs: {inputs}\n"
                f"  full log: {log}\n"
            )
            os.write(terminal, message.encode())
            sys.exit(1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()


NOT_PASSED = ("code", "step")


def resolve(target: str) -> Callable[..., None]:
    """The function a rule's `params.step` names, under alignlab ("shards.gather") or, for a
    kind outside the package, a full dotted name ("my_kind.steps.count")."""
    module, _, name = target.rpartition(".")
    for candidate in (f"alignlab.{module}", module):
        try:
            found = importlib.import_module(candidate)
        except ModuleNotFoundError as err:
            if err.name is None or not candidate.startswith(err.name):
                raise  # the module exists but fails to import: that error, not "no function"
            continue
        if callable(getattr(found, name, None)):
            return getattr(found, name)
    raise LookupError(f"params.step names '{target}', which is no function of alignlab or an importable module")


def _named(section: Any) -> dict[str, Any]:
    """A Snakemake input / output / params section's named entries (lists as plain lists)."""
    if hasattr(section, "items"):  # Snakemake's Namedlist
        items = section.items()
    else:  # a stand-in: a namespace, or a plain list (no names)
        items = () if isinstance(section, (list, tuple)) else vars(section).items()
    return {name: list(value) if isinstance(value, (list, tuple)) else value for name, value in items}


def arguments(snakemake: Any, step: Callable[..., None]) -> dict[str, Any]:
    """The keyword arguments a rule passes its step; names that do not match fail here."""
    kwargs = {}
    for section in (snakemake.input, snakemake.output, snakemake.params):
        kwargs.update({k: v for k, v in _named(section).items() if k not in NOT_PASSED})
    accepted = inspect.signature(step).parameters
    if "config" in accepted and "config" not in kwargs:
        kwargs["config"] = snakemake.config
    where = f"rule '{snakemake.rule}' runs {step.__module__}.{step.__name__}"
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"{where}, which takes no argument {unknown} (its arguments: {sorted(accepted)})")
    missing = sorted(n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in kwargs)
    if missing:
        raise TypeError(f"{where}, which needs {missing}: name them as the rule's input, output or params")
    return kwargs


def main(snakemake: Any) -> None:
    """Run the step function the rule names (see the module docstring)."""
    try:
        step = resolve(snakemake.params.step)
        kwargs = arguments(snakemake, step)
    except (LookupError, TypeError) as exc:
        sys.stderr.write(f"alignlab: {exc}\n")
        sys.exit(1)
    run(snakemake, step, **kwargs)
