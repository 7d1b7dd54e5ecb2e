"""How a rule's script runs a step: output to the rule's log, and a clear error on failure.

Everything the step prints (progress bars, vLLM's and transformers' messages) goes to the log
file, down at the file-descriptor level so child processes' output lands there too. When the
step fails, the user sees one message naming the step, its inputs and the cause, with the full
traceback left in the log. Every step ends its log with a table of where the time went (see
timings.py): its engine start-ups, model loads, generation and training, and the job's wall time.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
import time
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
