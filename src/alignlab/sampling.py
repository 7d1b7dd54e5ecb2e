"""Sampling with vLLM: one engine per job, a seed per request, adapters as LoRA requests.

Every step that needs text from a model (documents, base answers, arm samples, LLM judges) goes
through `Engine.chat`, so engine settings and seeding live in one place.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

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


def sampling_params(
    *,
    seed: int,
    max_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    regex: str | None = None,
    stop: Sequence[str] | None = None,
):
    """vLLM SamplingParams for one request. `regex` constrains the output (structured output)."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    return SamplingParams(
        seed=seed,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=list(stop) if stop else None,
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


def check_inputs(model_dir: str, adapter_dir: str | None, engine_cfg: dict[str, Any]) -> None:
    """What a sampling step checks before any engine starts: the model folder is complete, and
    the adapter's config is readable and, when the adapter is served as a LoRA request
    (engine.lora: request; a merged adapter has no rank limit), fits engine.max_lora_rank."""
    from alignlab.models import check_hf_folder

    check_hf_folder(Path(model_dir))
    if adapter_dir:
        request = engine_cfg.get("lora", "request") == "request"
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
        prefix_caching: bool = False,
        max_lora_rank: int = 16,
        tensor_parallel_size: int = 1,
        dtype: str = "bfloat16",
        enable_lora: bool = True,
        seed: int = 0,
        **extra: Any,
    ):
        """`kv_cache_gib` fixes the KV cache size (else `gpu_memory_utilization` decides it).
        `prefix_caching` is off by default: a warm prefix cache changes the arithmetic enough to
        flip close calls, so a sample would depend on what ran before it in the same engine."""
        from alignlab.models import check_hf_folder

        check_hf_folder(Path(model_dir))  # before vLLM's own, less telling, errors
        from vllm import LLM
        from vllm.platforms import current_platform

        if kv_cache_gib is not None:
            extra["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
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

    def lora_request(self, adapter_dir: str | None):
        if not adapter_dir:
            return None
        check_adapter(adapter_dir, self.max_lora_rank)
        from vllm.lora.request import LoRARequest

        adapter_dir = os.path.abspath(adapter_dir)
        int_id = 1 + int(hashlib.sha256(adapter_dir.encode()).hexdigest()[:7], 16)
        return LoRARequest(os.path.basename(adapter_dir), int_id, adapter_dir)

    def chat(
        self,
        conversations: Sequence[Conversation],
        params: Sequence[Any],
        adapter_dir: str | None = None,
        progress: bool = True,
    ) -> list[Completion]:
        """Complete each conversation with its own SamplingParams (one per conversation)."""
        if len(conversations) != len(params):
            raise ValueError("one SamplingParams per conversation is required")
        if not conversations:
            return []
        outputs = self.llm.chat(
            list(conversations),
            list(params),
            lora_request=self.lora_request(adapter_dir),
            use_tqdm=progress,
        )
        return [_completion(o) for o in outputs]

    def generate(
        self,
        prompts: Sequence[str],
        params: Sequence[Any],
        adapter_dir: str | None = None,
        progress: bool = True,
    ) -> list[Completion]:
        """Complete raw text prompts (no chat template)."""
        if not prompts:
            return []
        outputs = self.llm.generate(
            list(prompts), list(params), lora_request=self.lora_request(adapter_dir),
            use_tqdm=progress,
        )
        return [_completion(o) for o in outputs]

    def count_tokens(self, conversation: Conversation) -> int:
        ids = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True)
        return len(ids["input_ids"] if isinstance(ids, dict) else ids)


def _completion(output) -> Completion:
    best = output.outputs[0]
    return Completion(
        text=best.text,
        finish_reason=str(best.finish_reason),
        n_prompt_tokens=len(output.prompt_token_ids or []),
        n_output_tokens=len(best.token_ids),
    )
