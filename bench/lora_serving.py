"""Benchmark: serving a fine-tuned arm as a vLLM LoRA request vs as a merged model, on CPU.

Samples the same chats with the base engine + LoRA request and with an engine over the
adapter merged into a copy of the base (`engine.lora: request | merge`), twice each,
interleaved, in one run; prints tokens/s and the ratio. Needs an adapter, e.g. one that
`make run` trained:

    .venv/bin/python bench/lora_serving.py --adapter results/af/adapters/sdf
"""

from __future__ import annotations

import argparse
import tempfile
import time

from alignlab.finetune import merge_adapter
from alignlab.sampling import Engine, sampling_params


def throughput(engine: Engine, convs, new_tokens: int, adapter: str | None) -> float:
    params = [sampling_params(seed=i, max_tokens=new_tokens) for i in range(len(convs))]
    start = time.perf_counter()
    out = engine.chat(convs, params, adapter_dir=adapter, progress=False)
    return sum(c.n_output_tokens for c in out) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--model", default="results/models/smollm2/hf")
    ap.add_argument("--chats", type=int, default=24)
    ap.add_argument("--new-tokens", type=int, default=32)
    args = ap.parse_args()
    convs = [[{"role": "user", "content": f"Explain topic number {i} briefly."}] for i in range(args.chats)]
    base = Engine(args.model, kv_cache_gib=0.5)
    request = [throughput(base, convs, args.new_tokens, args.adapter) for _ in range(2)]
    del base
    with tempfile.TemporaryDirectory() as merged_dir:
        merge_adapter(args.model, args.adapter, merged_dir)
        merged_engine = Engine(merged_dir, kv_cache_gib=0.5, enable_lora=False)
        merged = [throughput(merged_engine, convs, args.new_tokens, None) for _ in range(2)]
    r, m = max(request), max(merged)
    print(f"\n{args.chats} chats x {args.new_tokens} new tokens, best of 2")
    print(f"LoRA request: {r:7.1f} tok/s\nmerged model: {m:7.1f} tok/s\nmerged / request: {m / r:.2f}x")


if __name__ == "__main__":
    main()
