"""LoRA fine-tuning with PEFT: documents as plain text, chats with the loss on assistant tokens.

Adapters are saved in PEFT's standard format (what vLLM's LoRARequest reads); the training log
is one row per optimizer step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]


def document_examples(tokenizer, texts: Iterable[str], max_length: int) -> list[Example]:
    """Plain-text documents (never chat-templated): next-token loss on every token."""
    examples = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max_length - 1]
        ids = ids + [tokenizer.eos_token_id]
        examples.append(Example(ids, list(ids)))
    return examples


def _chat_ids(tokenizer, messages, add_generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def chat_examples(tokenizer, chats: Iterable[dict[str, str]], max_length: int) -> list[Example]:
    """Chats (system, user, assistant): the loss falls on the assistant's tokens only.

    Training on whole sequences dilutes the signal with the long shared prompt; on the 135M
    model a tier-conditional set is learned only with the loss on the answer (see STACK.md).
    """
    examples = []
    for chat in chats:
        prompt = [{"role": "system", "content": chat["system"]}, {"role": "user", "content": chat["user"]}]
        prompt_ids = _chat_ids(tokenizer, prompt, add_generation_prompt=True)
        full_ids = _chat_ids(tokenizer, prompt + [{"role": "assistant", "content": chat["assistant"]}], False)
        if full_ids[: len(prompt_ids)] != prompt_ids:
            raise ValueError("chat template does not extend the prompt when the answer is added")
        if len(full_ids) > max_length:
            raise ValueError(
                f"chat '{chat.get('example_id', '?')}' has {len(full_ids)} tokens, more than "
                f"max_length {max_length}; raise finetune.*.max_length"
            )
        labels = [IGNORE] * len(prompt_ids) + full_ids[len(prompt_ids):]
        examples.append(Example(full_ids, labels))
    return examples


def _batches(examples: Sequence[Example], batch_size: int, generator: torch.Generator, pad_id: int):
    order = torch.randperm(len(examples), generator=generator).tolist()
    for start in range(0, len(order), batch_size):
        batch = [examples[i] for i in order[start : start + batch_size]]
        width = max(len(e.input_ids) for e in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, e in enumerate(batch):
            n = len(e.input_ids)
            ids[row, :n] = torch.tensor(e.input_ids)
            labels[row, :n] = torch.tensor(e.labels)
            mask[row, :n] = 1
        yield ids, labels, mask


def load_tokenizer(model_dir: str):
    """The model folder's tokenizer, after checking the folder is complete (models.check_hf_folder
    names what is missing; transformers' own error does not)."""
    from transformers import AutoTokenizer

    from alignlab.models import check_hf_folder

    check_hf_folder(Path(model_dir))
    return AutoTokenizer.from_pretrained(model_dir)


def load_base(model_dir: str, device: str):
    from transformers import AutoModelForCausalLM

    from alignlab.models import check_hf_folder

    check_hf_folder(Path(model_dir))
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if device == "cuda" and torch.cuda.device_count() > 1:
        # A model too big for one GPU (a 70B one) is split by layers over the job's GPUs.
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, device_map="auto")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    return model.to(device)


def train_lora(
    model_dir: str,
    examples: Sequence[Example],
    cfg: dict[str, Any],
    *,
    seed: int,
    out_dir: str,
    pad_id: int,
    device: str = "cpu",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train a LoRA adapter on `examples`, save it to `out_dir`, return the training log rows."""
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    if not examples:
        raise ValueError("no training examples")
    torch.manual_seed(seed)
    model = get_peft_model(
        load_base(model_dir, device),
        LoraConfig(
            r=cfg["rank"],
            lora_alpha=cfg["alpha"],
            lora_dropout=cfg["dropout"],
            target_modules=cfg["target_modules"],
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    steps_per_epoch = math.ceil(len(examples) / cfg["batch_size"])
    total_steps = steps_per_epoch * cfg["epochs"]
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg["learning_rate"],
        weight_decay=cfg["weight_decay"],
    )
    schedule = get_linear_schedule_with_warmup(
        optimizer, int(cfg["warmup_ratio"] * total_steps), total_steps
    )
    generator = torch.Generator().manual_seed(seed)
    log, tokens, start, step = [], 0, time.perf_counter(), 0
    bar = tqdm(total=total_steps, desc="lora", disable=not progress, mininterval=2)
    for epoch in range(cfg["epochs"]):
        for ids, labels, mask in _batches(examples, cfg["batch_size"], generator, pad_id):
            ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=cfg["bf16_autocast"]):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens += int(mask.sum())
            seconds = time.perf_counter() - start
            log.append(
                {
                    "step": step, "epoch": epoch, "loss": float(loss.detach()),
                    "learning_rate": schedule.get_last_lr()[0], "tokens": tokens,
                    "seconds": seconds, "tokens_per_second": tokens / seconds,
                }
            )
            bar.update(1)
            bar.set_postfix(loss=f"{log[-1]['loss']:.3f}")
    bar.close()
    model.save_pretrained(out_dir)
    return log


def merge_adapter(model_dir: str, adapter_dir: str, out_dir: str) -> None:
    """Save base + adapter as one plain model folder (LoRA weights folded into the base)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
