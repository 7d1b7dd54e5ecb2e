"""Sampling with vLLM: one engine per job, a seed per request, adapters as LoRA requests.

Every step that needs text from a model (documents, base answers, arm samples, LLM judges) goes
through `Engine.chat`, so engine settings and seeding live in one place. One engine serves many
arms: each request may name its own adapter (LoRA requests, batched together), or the served
weights are swapped in place (`Engine.load_weights`) without paying start-up again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from alignlab import timings

# Run the engine core in this process: no spawn, so Snakemake scripts need no __main__ guard,
# and start-up is a few seconds shorter on CPU.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    n_prompt_tokens: int
    n_output_tokens: int
    # The first generated token's top log-probabilities (token text -> logprob), when asked
    # for with `sampling_params(logprobs=...)`; vLLM's raw ones, before any constraint.
    first_logprobs: dict[str, float] | None = None
    n_cached_tokens: int = 0  # prompt tokens served from vLLM's prefix cache


def sampling_params(
    *,
    seed: int,
    max_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    regex: str | None = None,
    stop: Sequence[str] | None = None,
    logprobs: int | None = None,
):
    """vLLM SamplingParams for one request. `regex` constrains the output (structured output);
    `logprobs`: return this many top log-probabilities per generated token."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    return SamplingParams(
        seed=seed,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=list(stop) if stop else None,
        logprobs=logprobs,
        structured_outputs=StructuredOutputsParams(regex=regex) if regex else None,
    )


class AdapterError(ValueError):
    pass


def check_adapter(adapter_dir: str, max_lora_rank: int | None) -> None:
    """Fail before an adapter is loaded if its adapter_config.json is missing or unreadable, or
    (when `max_lora_rank`, config key engine.max_lora_rank, is given: the adapter is served as
    a vLLM LoRA request) a rank in it (`r`, or an entry of `rank_pattern`) exceeds it. vLLM's
    own error names neither the adapter nor the config key."""
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.is_file():
        raise AdapterError(f"adapter folder {adapter_dir} has no adapter_config.json")
    try:
        cfg = json.loads(path.read_text())
    except ValueError as exc:
        raise AdapterError(f"{path}: not valid JSON ({exc})") from None
    ranks = {"r": cfg.get("r")}
    ranks.update({f"rank_pattern.{k}": v for k, v in (cfg.get("rank_pattern") or {}).items()})
    for key, rank in ranks.items():
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise AdapterError(f"{path}: key '{key}' should be a positive integer (got {rank!r})")
        if max_lora_rank is not None and rank > max_lora_rank:
            raise AdapterError(
                f"adapter folder {adapter_dir}: key '{key}' in adapter_config.json is {rank}, more "
                f"than engine.max_lora_rank ({max_lora_rank}), the largest rank the engine serves; "
                f"raise engine.max_lora_rank to at least {rank} or set engine.lora: merge"
            )


def check_inputs(
    model_dir: str, adapter_dirs: Sequence[str], engine_cfg: dict[str, Any], inputs: Sequence[str] | None = None,
) -> None:
    """What a sampling step checks before any engine starts: the model folder is complete, and
    each adapter's config is readable and, when adapters are served as LoRA requests
    (engine.lora: request; a merged adapter has no rank limit), fits engine.max_lora_rank.
    `inputs`: the adapter folders the rule declares as inputs; an adapter outside them would be
    read without Snakemake having built it."""
    from alignlab.models import check_hf_folder

    undeclared = sorted(set(adapter_dirs) - set(inputs)) if inputs is not None else []
    if undeclared:
        raise ValueError(f"adapters {undeclared} are not among the step's inputs ({sorted(inputs)})")

    check_hf_folder(Path(model_dir))
    request = engine_cfg.get("lora", "request") == "request"
    for adapter_dir in adapter_dirs:
        check_adapter(adapter_dir, engine_cfg["max_lora_rank"] if request else None)


class Engine:
    """A vLLM engine over one Hugging Face model folder (see models.materialize)."""

    def __init__(
        self,
        model_dir: str,
        *,
        max_model_len: int = 2048,
        gpu_memory_utilization: float = 0.9,
        kv_cache_gib: float | None = None,
        prefix_caching: bool = True,
        max_lora_rank: int = 16,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        enable_lora: bool = True,
        seed: int = 0,
        compilation: str = "auto",
        compile_cache: str | None = None,
        **extra: Any,
    ):
        """`kv_cache_gib` fixes the KV cache size (else `gpu_memory_utilization` decides it).
        `prefix_caching` reuses the KV cache of shared prompt prefixes (the long system prompts)
        within one call; every call starts from an empty cache, because a prompt whose prefix is
        cached is computed along another path whose numerics differ (in bf16 enough to flip
        sampled tokens), so without that a call's samples would depend on what the process sampled
        before. Like batching, caching can flip a close call against an engine without it
        (bench/sampling.py counts how often). `compilation` (config key
        engine.compilation): `none` runs the model eagerly (no torch.compile, no CUDA graphs),
        `inductor` is vLLM's default (torch.compile, CUDA graphs on GPUs), `dynamo` traces with
        torch.compile but runs the traced graph eagerly; `auto`: none on CPU, inductor on GPUs.
        `dtype` `auto`: see resolve_dtype. `compile_cache` (engine.compile_cache):
        vLLM's cache folder (VLLM_CACHE_ROOT), shared by every job of a run; None keeps vLLM's
        own (~/.cache/vllm). bench/startup.py measures the choices."""
        from alignlab.models import check_hf_folder

        start = time.perf_counter()  # start-up includes importing vLLM
        check_hf_folder(Path(model_dir))  # before vLLM's own, less telling, errors
        if compile_cache is not None and "VLLM_CACHE_ROOT" not in os.environ:
            # Read by vLLM when it is imported, so set before that; one process, one engine.
            os.environ["VLLM_CACHE_ROOT"] = os.path.abspath(compile_cache)
        from vllm import LLM
        from vllm.platforms import current_platform

        if kv_cache_gib is not None:
            extra["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
        apply_compilation(resolve_compilation(compilation, current_platform.is_cpu()), extra)
        dtype = resolve_dtype(dtype, current_platform.is_cpu())
        if current_platform.is_cpu():
            # vLLM 0.32 on CPU crashes ("CPU Generator does not use offset") when a seeded
            # request's prefill is split across steps; keep every prompt in one step.
            extra.setdefault("enable_chunked_prefill", False)
        self.model_dir = str(model_dir)
        self.max_model_len = max_model_len
        self.max_lora_rank = max_lora_rank
        self.llm = LLM(
            enable_prefix_caching=prefix_caching,
            model=self.model_dir,
            dtype=dtype,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_lora=enable_lora,
            max_lora_rank=max_lora_rank,
            tensor_parallel_size=tensor_parallel_size,
            seed=seed,
            **extra,
        )
        self.tokenizer = self.llm.get_tokenizer()
        timings.record("engine start-up", time.perf_counter() - start)

    def load_weights(self, model_dir: str, stage: str = "load weights") -> None:
        """Serve the weights of `model_dir` (same architecture, e.g. the base with an adapter
        merged in) in place of the current ones, keeping the engine: vLLM reloads them layer by
        layer and redoes its CPU weight packing. Cached prefixes of the old weights are dropped."""
        with timings.timer(stage):
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(model_dir)})
            self.llm.reset_prefix_cache()

    def lora_request(self, adapter_dir: str | None):
        if not adapter_dir:
            return None
        check_adapter(adapter_dir, self.max_lora_rank)
        from vllm.lora.request import LoRARequest

        adapter_dir = os.path.abspath(adapter_dir)
        int_id = 1 + int(hashlib.sha256(adapter_dir.encode()).hexdigest()[:7], 16)
        return LoRARequest(os.path.basename(adapter_dir), int_id, adapter_dir)

    def _lora_requests(self, adapters: str | None | Sequence[str | None], n: int):
        if adapters is None or isinstance(adapters, (str, os.PathLike)):
            return self.lora_request(adapters)
        if len(adapters) != n:
            raise ValueError("one adapter (or None) per request is required")
        requests = {a: self.lora_request(a) for a in set(adapters)}
        return [requests[a] for a in adapters]

    def chat(
        self,
        conversations: Sequence[Conversation],
        params: Sequence[Any],
        adapter_dir: str | None | Sequence[str | None] = None,
        progress: bool = True,
        stage: str = "generate",
    ) -> list[Completion]:
        """Complete each conversation with its own SamplingParams (one per conversation).
        `adapter_dir`: one adapter for all, or one per conversation (None: the served weights).
        Do not mix None with adapters in one call on CPU (see arm_sampling.chat_arms)."""
        if len(conversations) != len(params):
            raise ValueError("one SamplingParams per conversation is required")
        if not conversations:
            return []
        start = time.perf_counter()
        self.llm.reset_prefix_cache()  # see __init__: a call's samples depend on its requests only
        outputs = self.llm.chat(
            list(conversations),
            list(params),
            lora_request=self._lora_requests(adapter_dir, len(conversations)),
            use_tqdm=progress,
        )
        return timed(stage, start, [_completion(o) for o in outputs])

    def generate(
        self,
        prompts: Sequence[str],
        params: Sequence[Any],
        adapter_dir: str | None | Sequence[str | None] = None,
        progress: bool = True,
        stage: str = "generate",
    ) -> list[Completion]:
        """Complete raw text prompts (no chat template)."""
        if not prompts:
            return []
        start = time.perf_counter()
        self.llm.reset_prefix_cache()  # see __init__
        outputs = self.llm.generate(
            list(prompts), list(params), lora_request=self._lora_requests(adapter_dir, len(prompts)),
            use_tqdm=progress,
        )
        return timed(stage, start, [_completion(o) for o in outputs])

    def count_tokens(self, conversation: Conversation) -> int:
        ids = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True)
        return len(ids["input_ids"] if isinstance(ids, dict) else ids)


COMPILATIONS = ("none", "dynamo", "inductor")


def resolve_compilation(compilation: str, on_cpu: bool) -> str:
    """engine.compilation `auto`: none (eager) on CPU, where a cold torch.compile costs minutes
    per engine and gains little at this project's job sizes (bench/startup.py); inductor
    (vLLM's default, with CUDA graphs) on GPUs."""
    if compilation != "auto":
        return compilation
    return "none" if on_cpu else "inductor"


def resolve_dtype(dtype: str, on_cpu: bool) -> str:
    """engine.dtype `auto`: bfloat16, except float32 on a CPU without native bf16 (no AVX512-BF16,
    no AMX), where vLLM emulates bf16 and generates several times slower (bench/startup.py)."""
    if dtype != "auto":
        return dtype
    from alignlab.hardware import native_bf16

    return "float32" if on_cpu and not native_bf16("cpu") else "bfloat16"


def apply_compilation(compilation: str, extra: dict[str, Any]) -> None:
    """The LLM(...) arguments for an engine.compilation choice (see Engine)."""
    if compilation == "none":
        extra.setdefault("enforce_eager", True)
    elif compilation == "dynamo":
        extra.setdefault("compilation_config", {"backend": "eager"})
    elif compilation != "inductor":
        raise ValueError(f"engine.compilation: expected one of {COMPILATIONS} (got {compilation!r})")


def engine_from_config(model_dir: str, engine_cfg: dict[str, Any], seed: int, **overrides: Any) -> Engine:
    """An Engine with the config's `engine` settings (device and lora are the rules' business)."""
    settings = {k: v for k, v in {**engine_cfg, **overrides}.items() if k not in ("device", "lora")}
    return Engine(model_dir, seed=seed, **settings)


def timed(stage: str, start: float, completions: list[Completion]) -> list[Completion]:
    """Record how long `completions` took since `start` (see timings.py); returns them."""
    timings.record(
        stage, time.perf_counter() - start, items=len(completions),
        prompt_tokens=sum(c.n_prompt_tokens for c in completions),
        output_tokens=sum(c.n_output_tokens for c in completions),
    )
    return completions


def _completion(output) -> Completion:
    best = output.outputs[0]
    first = None
    if best.logprobs:
        first = {lp.decoded_token: lp.logprob for lp in best.logprobs[0].values() if lp.decoded_token is not None}
    return Completion(
        text=best.text,
        finish_reason=str(best.finish_reason),
        n_prompt_tokens=len(output.prompt_token_ids or []),
        n_output_tokens=len(best.token_ids),
        first_logprobs=first,
        n_cached_tokens=output.num_cached_tokens or 0,
    )
