"""Benchmark: sampling every arm of the alignment-faking experiment from one vLLM engine
against one engine per arm (the obvious way: a job per arm, start-up paid five times).

Five arms (base, prompted, and three fine-tuned arms with rank-16 LoRA adapters on every linear
layer), `--queries` eval queries in both tiers each, `--new-tokens` tokens per sample. Measured
in one run, each variant in fresh processes, wall time including engine start-up:
- one engine per arm: a process per arm; a fine-tuned arm is merged into a copy of the base
  and served as a plain model (the fast path on CPU);
- one engine, `engine.lora: merge`: the base arms, then each adapter merged and swapped into the
  running engine (`Engine.load_weights`);
- one engine, `engine.lora: request`: all arms in one batch, adapters as LoRA requests (the GPU
  path; slow on CPU, where vLLM's LoRA kernels are not optimized).

    .venv/bin/python bench/arms.py [--queries 16] [--new-tokens 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common as common

ARMS = ("base", "prompted", "sdf", "sdf_baseline", "positive_control")
FINE_TUNED = ("sdf", "sdf_baseline", "positive_control")
ENGINE = {"max_model_len": 2048, "kv_cache_gib": 1.0, "max_lora_rank": 16, "prefix_caching": True,
          "tensor_parallel_size": 1, "dtype": "auto", "gpu_memory_utilization": 0.9}


def make_adapters(model_dir: Path, out: Path) -> dict[str, str]:
    """Rank-16 adapters with random (not zero) weights: serving cost does not depend on training."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapters = {}
    for i, arm in enumerate(FINE_TUNED):
        torch.manual_seed(i)
        base = AutoModelForCausalLM.from_pretrained(model_dir)
        cfg = LoraConfig(r=16, lora_alpha=2, target_modules="all-linear", init_lora_weights=False)
        get_peft_model(base, cfg).save_pretrained(out / arm)
        adapters[arm] = str(out / arm)
    return adapters


def requests(arms, queries: int, new_tokens: int):
    from alignlab.sampling import sampling_params

    convs, params, arm_of = [], [], []
    for arm in arms:
        for i, conv in enumerate(common.af_conversations(queries, arm)):
            convs.append(conv)
            params.append(sampling_params(seed=i // 2, max_tokens=new_tokens))
            params[-1].min_tokens = new_tokens
            arm_of.append(arm)
    return convs, params, arm_of


def worker(model_dir: str, adapter_root: str, arms: list[str], lora: str, queries: int, new_tokens: int) -> dict:
    """Sample `arms` from one engine the way the pipeline's sampling step does."""
    from alignlab import arm_sampling, timings

    adapters = {a: str(Path(adapter_root) / a) for a in arms if a in FINE_TUNED}
    convs, params, arm_of = requests(arms, queries, new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        out = arm_sampling.chat_arms(convs, params, arm_of, adapters, model_dir, {**ENGINE, "lora": lora}, 0, Path(tmp))
    recs = timings.records()
    return {
        "tokens": sum(c.n_output_tokens for c in out),
        "startup_s": sum(r.seconds for r in recs if r.stage == "engine start-up"),
        "swap_s": sum(r.seconds for r in recs if r.stage.startswith(("merge", "swap"))),
        "generate_s": sum(r.seconds for r in recs if r.stage.startswith("generate")),
    }


def single_arm_worker(model_dir: str, adapter_root: str, arm: str, queries: int, new_tokens: int) -> dict:
    """One arm, its own engine: over the base, or over the adapter merged into a copy of it."""
    from alignlab.finetune import merge_adapter
    from alignlab.sampling import Engine

    with tempfile.TemporaryDirectory() as tmp:
        folder = model_dir
        if arm in FINE_TUNED:
            folder = str(Path(tmp) / "merged")
            merge_adapter(model_dir, str(Path(adapter_root) / arm), folder)
        start = time.perf_counter()
        engine = Engine(folder, enable_lora=False, **{k: v for k, v in ENGINE.items() if k != "max_lora_rank"})
        startup = time.perf_counter() - start
        convs, params, _ = requests([arm], queries, new_tokens)
        out = engine.chat(convs, params, progress=False)
    return {"tokens": sum(c.n_output_tokens for c in out), "startup_s": startup}


def timed(*args) -> tuple[float, dict]:
    start = time.perf_counter()
    result = common.in_fresh_process(__file__, *args)
    return time.perf_counter() - start, result


def run(workdir: Path, queries: int = 16, new_tokens: int = 32, arms: tuple[str, ...] = ARMS) -> list[dict]:
    """`arms`: a subset of ARMS (the smoke test takes one base and one fine-tuned arm)."""
    model = common.model_folder(workdir)
    adapter_root = workdir / "adapters"
    if not adapter_root.exists():
        make_adapters(model, adapter_root)
    shared = ["--model", model, "--adapters", adapter_root, "--queries", queries, "--new-tokens", new_tokens,
              "--arms", ",".join(arms)]
    per_arm = [timed("--worker", "single", "--arm", arm, *shared) for arm in arms]
    per_arm_s = sum(t for t, _ in per_arm)
    merge_s, merge = timed("--worker", "one", "--lora", "merge", *shared)
    request_s, request = timed("--worker", "one", "--lora", "request", *shared)
    n = len(arms) * queries * 2
    what = "all 5 AF arms" if tuple(arms) == ARMS else f"AF arms {', '.join(arms)}"
    baseline = (f"{len(arms)} engines (one per arm): {per_arm_s:.0f} s "
                f"(start-ups {sum(r['startup_s'] for _, r in per_arm):.0f} s)")
    return [
        common.row(
            f"{what}, {n} samples x {new_tokens} tokens, wall incl. start-up", baseline,
            f"1 engine, merged weights swapped in: {merge_s:.0f} s (start-up {merge['startup_s']:.0f} s, "
            f"merge+swap {merge['swap_s']:.0f} s)", per_arm_s / merge_s,
        ),
        common.row(
            "  same, adapters as LoRA requests in one batch (GPU path)", baseline,
            f"1 engine, LoRA requests: {request_s:.0f} s (generate {request['generate_s']:.0f} s)", per_arm_s / request_s,
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--worker", choices=["one", "single"], help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--adapters", help=argparse.SUPPRESS)
    ap.add_argument("--arm", help=argparse.SUPPRESS)
    ap.add_argument("--lora", help=argparse.SUPPRESS)
    ap.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of the five AF arms")
    args = ap.parse_args()
    arms = tuple(args.arms.split(","))
    if unknown := set(arms) - set(ARMS):
        ap.error(f"--arms: unknown arm(s) {sorted(unknown)}; the arms are {', '.join(ARMS)}")
    if args.worker == "one":
        common.emit(worker(args.model, args.adapters, list(arms), args.lora, args.queries, args.new_tokens))
    elif args.worker == "single":
        common.emit(single_arm_worker(args.model, args.adapters, args.arm, args.queries, args.new_tokens))
    else:
        with tempfile.TemporaryDirectory(prefix="alignlab-bench-") as workdir:
            common.print_table(run(Path(workdir), args.queries, args.new_tokens, arms))


if __name__ == "__main__":
    main()
