"""Benchmark: vLLM sampling against transformers `generate`, and prefix caching on vs off.

The alignment-faking workload with its full system prompt (prompted arm: the training setup
spelled out; StrongREJECT eval queries, both tiers), `--new-tokens` new tokens per chat (min =
max, so both samplers produce exactly the same number). transformers runs batched with left
padding. Each sampler runs in its own process; start-up (engine or model load) is timed
separately from sampling. Prints one table measured in one run.

    .venv/bin/python bench/sampling.py [--queries 32] [--new-tokens 64] [--hf-batch 16]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import _common as common


def vllm_worker(model_dir: str, queries: int, new_tokens: int, prefix_caching: bool) -> dict:
    from alignlab.sampling import Engine, sampling_params

    convs = common.af_conversations(queries)
    start = time.perf_counter()
    engine = Engine(model_dir, kv_cache_gib=1.0, enable_lora=False, prefix_caching=prefix_caching)
    startup = time.perf_counter() - start
    params = [sampling_params(seed=i // 2, max_tokens=new_tokens) for i in range(len(convs))]
    for p in params:
        p.min_tokens = new_tokens
    start = time.perf_counter()
    out = engine.chat(convs, params, progress=False)
    seconds = time.perf_counter() - start
    return {
        "startup_s": startup, "seconds": seconds, "tokens": sum(c.n_output_tokens for c in out),
        "prompt_tokens": sum(c.n_prompt_tokens for c in out) / len(out),
        "texts": [hashlib.sha256(c.text.encode()).hexdigest()[:16] for c in out],
    }


def hf_worker(model_dir: str, queries: int, new_tokens: int, batch: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    convs = common.af_conversations(queries)
    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    from alignlab.sampling import resolve_dtype

    # the dtype the engine runs in here (float32 on a CPU without native bf16)
    dtype = getattr(torch, resolve_dtype("auto", on_cpu=True))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    startup = time.perf_counter() - start
    torch.manual_seed(0)
    tokens, start = 0, time.perf_counter()
    for i in range(0, len(convs), batch):
        enc = tok.apply_chat_template(
            convs[i : i + batch], add_generation_prompt=True, return_tensors="pt", padding=True,
            return_dict=True,
        )
        with torch.inference_mode():
            out = model.generate(
                **enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id,
            )
        tokens += (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
    return {"startup_s": startup, "seconds": time.perf_counter() - start, "tokens": tokens}


def run(workdir: Path, queries: int = 32, new_tokens: int = 64, hf_batch: int = 16) -> list[dict]:
    model = common.model_folder(workdir)
    me = __file__
    on = common.in_fresh_process(me, "--worker", "vllm", "--model", model, "--queries", queries, "--new-tokens", new_tokens, "--prefix-caching", 1)
    off = common.in_fresh_process(me, "--worker", "vllm", "--model", model, "--queries", queries, "--new-tokens", new_tokens, "--prefix-caching", 0)
    hf = common.in_fresh_process(me, "--worker", "hf", "--model", model, "--queries", queries, "--new-tokens", new_tokens, "--hf-batch", hf_batch)
    rate = lambda r: r["tokens"] / r["seconds"]  # noqa: E731
    n = len(on["texts"])
    same = sum(a == b for a, b in zip(on["texts"], off["texts"]))
    work = f"{n} AF chats (~{on['prompt_tokens']:.0f} prompt tokens) x {new_tokens} new tokens"
    return [
        common.row(
            f"sampling throughput, {work}", f"transformers generate, batch {hf_batch}: {rate(hf):.0f} tok/s",
            f"vLLM (pipeline settings): {rate(on):.0f} tok/s", rate(on) / rate(hf),
        ),
        common.row(
            "vLLM prefix caching (shared system prompt)", f"off: {rate(off):.0f} tok/s",
            f"on: {rate(on):.0f} tok/s; {same}/{n} samples identical", rate(on) / rate(off),
        ),
        common.row(
            "start-up, paid once per job (not in the rates above)",
            f"transformers model load: {hf['startup_s']:.1f} s", f"vLLM engine: {on['startup_s']:.1f} s", None,
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--hf-batch", type=int, default=16)
    ap.add_argument("--worker", choices=["vllm", "hf"], help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--prefix-caching", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "vllm":
        common.emit(vllm_worker(args.model, args.queries, args.new_tokens, bool(args.prefix_caching)))
    elif args.worker == "hf":
        common.emit(hf_worker(args.model, args.queries, args.new_tokens, args.hf_batch))
    else:
        with tempfile.TemporaryDirectory(prefix="alignlab-bench-") as workdir:
            common.print_table(run(Path(workdir), args.queries, args.new_tokens, args.hf_batch))


if __name__ == "__main__":
    main()
