"""Benchmark: vLLM engine start-up on CPU, and generation speed, for each compilation choice.

Each measurement is a fresh process (as every pipeline job is) that imports vLLM, starts an
`alignlab.sampling.Engine` over the packaged model with one `engine.compilation` choice, and
samples the alignment-faking workload at the size of one arm of the default run's sampling job
(30 queries x 2 tiers = 60 chats, 96 new tokens). Start-up is split from vLLM's own log lines:
importing vLLM, loading the weights, compiling (torch.compile / inductor), and the rest (KV-cache
profiling and allocation, warm-up, tokenizer; compilation is part of engine init in vLLM's own
split, and is shown apart from it here). Each choice (engine.compilation : engine.dtype; bf16 is
emulated, and slow, on CPUs without AVX512-BF16 or AMX; `auto:auto` is what the pipeline runs on
this machine, named with what it resolved to) runs twice against one compile cache
folder (`VLLM_CACHE_ROOT`) that starts empty: `cold` is a new machine's first job, `warm` every
later job of a run (the pipeline shares one cache folder, `engine.compile_cache`, by all jobs).

    .venv/bin/python bench/startup.py [--choices auto:auto inductor:float32] [--chats 60] [--tokens 96]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import _common as common

# vLLM's log lines that split start-up (the regexes take the seconds).
# vLLM logs compilation inside engine init: "init engine (...) took 65.2 s (compilation: 40.1 s)".
PHASES = {
    "weights": r"Loading weights took ([\d.]+) s",
    "compile": r"init engine \(profile, create kv cache, warmup model\) took [\d.]+ s \(compilation: ([\d.]+) s",
    "engine init": r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) s",
}


def child(args: dict) -> None:
    """One fresh process: import, start, sample; prints the result."""
    os.environ["VLLM_CACHE_ROOT"] = args["cache"]
    t0 = time.perf_counter()
    import vllm  # noqa: F401 - timed on its own

    imported = time.perf_counter() - t0
    from alignlab.sampling import Engine, sampling_params

    start = time.perf_counter()
    eng = Engine(args["model"], kv_cache_gib=1.0, max_model_len=2048, enable_lora=False,
                 compilation=args["choice"], dtype=args.get("dtype", "bfloat16"))
    startup = time.perf_counter() - start
    convs = common.af_conversations(args["chats"] // 2)
    params = [sampling_params(seed=i, max_tokens=args["tokens"]) for i in range(len(convs))]
    start = time.perf_counter()
    done = eng.chat(convs, params, progress=False)
    seconds = time.perf_counter() - start
    common.emit({
        "import": imported, "startup": startup, "generate": seconds,
        "tokens": sum(c.n_output_tokens for c in done), "chats": len(done),
    })


def measure(choice: str, cache: Path, model: Path, chats: int, tokens: int) -> dict:
    compilation, dtype = choice.split(":")
    args = {"choice": compilation, "dtype": dtype, "cache": str(cache), "model": str(model), "chats": chats,
            "tokens": tokens}
    proc = common.run_fresh(__file__, "--child", json.dumps(args))
    result = common.parse_result(proc)
    log = proc.stdout + proc.stderr
    for phase, pattern in PHASES.items():
        found = [float(x) for x in re.findall(pattern, log)]
        result[phase] = sum(found)
    return result


def describe(r: dict) -> str:
    other = r["startup"] - r["weights"] - r["engine init"]  # compilation is part of engine init
    return (
        f"start-up {r['import'] + r['startup']:.0f} s (import {r['import']:.0f}, weights {r['weights']:.0f}, "
        f"compile {r['compile']:.0f}, KV cache + warm-up {r['engine init'] - r['compile']:.0f}, other {other:.0f}); "
        f"generate {r['tokens'] / r['generate']:.0f} tok/s"
    )


# vLLM's default (before), then engine.compilation:dtype `auto:auto` (what the pipeline runs on
# this machine: float32 or bfloat16 by the CPU), then the other dtype eagerly and compiled.
DEFAULT_CHOICES = ("inductor:bfloat16", "auto:auto", "none:float32", "none:bfloat16", "inductor:float32")


def resolve(choice: str) -> str:
    """A compilation:dtype choice with `auto` resolved as the pipeline resolves it on this machine."""
    from alignlab.sampling import resolve_compilation, resolve_dtype

    compilation, dtype = choice.split(":")
    return f"{resolve_compilation(compilation, on_cpu=True)}:{resolve_dtype(dtype, on_cpu=True)}"


def run(workdir: Path, choices=DEFAULT_CHOICES, chats: int = 60, tokens: int = 96, warm: bool = True) -> list[dict]:
    """`auto` in a choice is resolved as the pipeline would here; a choice that resolves to one
    already measured is measured once, under the `auto` name (e.g. `auto:auto = none:bfloat16`)."""
    model = common.model_folder(workdir)
    names: dict[str, str] = {}  # resolved choice -> its row name
    for choice in choices:
        resolved = resolve(choice)
        if "auto" in choice:
            names[resolved] = f"{choice} = {resolved}"
        else:
            names.setdefault(resolved, choice)
    rows, got = [], {}
    for resolved, name in names.items():
        cache = Path(tempfile.mkdtemp(prefix=f"vllm-cache-{resolved.replace(':', '-')}-", dir=workdir))
        for state in ("cold", "warm") if warm else ("cold",):
            got[name, state] = r = measure(resolved, cache, model, chats, tokens)
            print(f"{name} {state}: {describe(r)}", flush=True)
    first = next(iter(names.values()))
    base = got[first, "cold"]
    base_total = base["import"] + base["startup"] + base["generate"]
    for (name, state), r in got.items():
        total = r["import"] + r["startup"] + r["generate"]
        is_base = (name, state) == (first, "cold")
        rows.append(common.row(
            f"vLLM start-up + {r['chats']} chats x {tokens} tokens, engine compilation:dtype {name}, {state} cache",
            "(the baseline)" if is_base else f"{first}, cold: {base_total:.0f} s",
            f"{total:.0f} s: {describe(r)}",
            None if is_base else base_total / total,
        ))
    return rows


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--choices", nargs="+", default=list(DEFAULT_CHOICES),
                    help="engine.compilation:engine.dtype pairs, e.g. auto:auto none:float32 inductor:bfloat16")
    ap.add_argument("--chats", type=int, default=60)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--cold-only", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="alignlab-bench-") as workdir:
        common.print_table(run(Path(workdir), tuple(args.choices), args.chats, args.tokens, not args.cold_only))


if __name__ == "__main__":
    main()
