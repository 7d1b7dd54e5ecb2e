"""LoRA fine-tuning with PEFT: documents as plain text, chats with the loss on assistant tokens.

With `pack` (the default), examples share rows of up to max_length tokens (documents back to
back, chats whole and first-fit; see `pack`), with position_ids restarting at every example so
that they do not attend to each other (see Batch.model_inputs); without it, each example is its
own padded row.

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
    # Packing may cut a document at a row's end and go on in the next row; a chat stays whole.
    splittable: bool = False


def document_examples(tokenizer, texts: Iterable[str], max_length: int) -> list[Example]:
    """Plain-text documents (never chat-templated): next-token loss on every token."""
    examples = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max_length - 1]
        ids = ids + [tokenizer.eos_token_id]
        examples.append(Example(ids, list(ids), splittable=True))
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


@dataclass
class Row:
    """One training row: the examples it holds, back to back (one example unless packed)."""
    examples: list[Example]

    def __len__(self) -> int:
        return sum(len(e.input_ids) for e in self.examples)


def pack(examples: Sequence[Example], max_length: int, generator: torch.Generator) -> list[Row]:
    """Pack examples into rows of at most `max_length` tokens, in a seeded random order.

    Whole examples (chats) go first-fit: into the first row with room, else a new row; a chat is
    never split. Splittable examples (documents) are packed sequentially: they fill the last
    row and go on at the start of a new one, so rows are full (documents here are 40-100% of
    max_length, so whole documents would leave a quarter of every row empty). A continuation
    starts its own attention block: it does not see the part of its document in the previous
    row, and its first token is not trained (one label per cut). Deterministic for a given
    generator state.
    """
    rows: list[Row] = []
    room: list[int] = []
    for i in torch.randperm(len(examples), generator=generator).tolist():
        e = examples[i]
        n = len(e.input_ids)
        if e.splittable:
            at = 0
            while at < n:
                if not rows or room[-1] == 0:
                    rows.append(Row([]))
                    room.append(max_length)
                take = min(room[-1], n - at)
                rows[-1].examples.append(Example(e.input_ids[at : at + take], e.labels[at : at + take], True))
                room[-1] -= take
                at += take
            continue
        if n > max_length:
            raise ValueError(f"an example has {n} tokens, more than max_length {max_length}")
        for r, free in enumerate(room):
            if n <= free:
                rows[r].examples.append(e)
                room[r] -= n
                break
        else:
            rows.append(Row([e]))
            room.append(max_length - n)
    return rows


@dataclass
class Batch:
    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor | None  # padded rows (one example each)
    position_ids: torch.Tensor | None  # packed rows: restart at 0 at every example
    tokens: int  # real (non-pad) tokens

    def to(self, device) -> "Batch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(move(self.input_ids), move(self.labels), move(self.attention_mask),
                     move(self.position_ids), self.tokens)

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments for the model's forward.

        Packed rows carry no attention mask, only position_ids that restart at 0 at every
        example: transformers' masking_utils (create_causal_mask -> find_packed_sequence_indices)
        then builds a block-diagonal causal mask, so examples do not attend to each other. It
        looks at position_ids only when attention_mask is None AND there is no KV cache, so
        use_cache=False is required: with the config's use_cache=True the model makes an empty
        DynamicCache even in training and silently falls back to one causal mask over the row.
        """
        kwargs = {"input_ids": self.input_ids, "labels": self.labels, "use_cache": False}
        if self.attention_mask is not None:
            kwargs["attention_mask"] = self.attention_mask
        if self.position_ids is not None:
            kwargs["position_ids"] = self.position_ids
        return kwargs


def collate(rows: Sequence[Row], pad_id: int, packed: bool) -> Batch:
    """Rows -> one right-padded batch.

    Unpacked rows (one example each) get an attention mask over their real tokens. Packed rows
    get position_ids instead (see Batch.model_inputs); the padding tail is one more "example"
    (positions from 0, labels IGNORE), which no real token can see under the causal mask. In a
    packed row the first label of every example is IGNORE, so no example's first token is
    predicted from the end of the previous one (alone, that label is never used either: the
    loss shifts labels left by one).
    """
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = None if packed else torch.zeros((len(rows), width), dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long) if packed else None
    tokens = 0
    for b, row in enumerate(rows):
        at = 0
        for e in row.examples:
            n = len(e.input_ids)
            ids[b, at : at + n] = torch.tensor(e.input_ids)
            labels[b, at : at + n] = torch.tensor(e.labels)
            if packed:
                labels[b, at] = IGNORE
                positions[b, at : at + n] = torch.arange(n)
            else:
                mask[b, at : at + n] = 1
            at += n
        if packed and at < width:
            positions[b, at:] = torch.arange(width - at)
        tokens += at
    return Batch(ids, labels, mask, positions, tokens)


def _rows(examples: Sequence[Example], max_length: int, packed: bool, generator: torch.Generator) -> list[Row]:
    if packed:
        return pack(examples, max_length, generator)
    return [Row([e]) for e in examples]


def _batches(rows: Sequence[Row], batch_size: int, generator: torch.Generator, pad_id: int, packed: bool):
    order = torch.randperm(len(rows), generator=generator).tolist()
    for start in range(0, len(order), batch_size):
        yield collate([rows[i] for i in order[start : start + batch_size]], pad_id, packed)


def autocast_dtype(device: str, wanted: bool) -> torch.dtype | None:
    """bf16 for autocast when asked for and the hardware has it natively (CUDA with bf16; a CPU
    with AVX512-BF16 or AMX), else None (fp32): emulated bf16 is slower than fp32."""
    from alignlab.hardware import native_bf16

    return torch.bfloat16 if wanted and native_bf16(device) else None


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
    init_adapter: str | None = None,
) -> list[dict[str, Any]]:
    """Train a LoRA adapter on `examples`, save it to `out_dir`, return the training log rows.
    With `init_adapter`, that adapter's weights are trained on (its rank, alpha and target
    modules; the config's are ignored) instead of a new adapter's."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    if not examples:
        raise ValueError("no training examples")
    packed = cfg["pack"]
    torch.manual_seed(seed)
    base = load_base(model_dir, device)
    if cfg["gradient_checkpointing"]:
        # Non-reentrant checkpointing of every decoder layer. transformers also calls
        # enable_input_require_grads() here (what PEFT needs with a frozen embedding).
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if init_adapter is not None:
        model = PeftModel.from_pretrained(base, init_adapter, is_trainable=True)
    else:
        model = get_peft_model(
            base,
            LoraConfig(
                r=cfg["rank"],
                lora_alpha=cfg["alpha"],
                lora_dropout=cfg["dropout"],
                target_modules=cfg["target_modules"],
                task_type="CAUSAL_LM",
            ),
        )
    model.train()
    generator = torch.Generator().manual_seed(seed)
    rows = _rows(examples, cfg["max_length"], packed, generator)
    steps_per_epoch = math.ceil(len(rows) / cfg["batch_size"])
    max_steps = cfg.get("max_steps")
    total_steps = max_steps or steps_per_epoch * cfg["epochs"]
    epochs = math.ceil(total_steps / steps_per_epoch)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg["learning_rate"],
        weight_decay=cfg["weight_decay"],
    )
    schedule = get_linear_schedule_with_warmup(
        optimizer, int(cfg["warmup_ratio"] * total_steps), total_steps
    )
    amp = autocast_dtype(device, cfg["bf16_autocast"])
    amp_device = torch.device(device).type
    log, tokens, start, step = [], 0, time.perf_counter(), 0
    bar = tqdm(total=total_steps, desc="lora", disable=not progress, mininterval=2)
    for epoch in range(epochs):
        for batch in _batches(rows, cfg["batch_size"], generator, pad_id, packed):
            if step == total_steps:
                break
            batch = batch.to(device)
            with torch.autocast(device_type=amp_device, dtype=amp or torch.bfloat16, enabled=amp is not None):
                loss = model(**batch.model_inputs()).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens += batch.tokens
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


def merge_adapter(model_dir: str, adapter_dir: str, out_dir: str, dtype: torch.dtype | str = torch.bfloat16) -> None:
    """Save base + adapter as one plain model folder (LoRA weights folded into the base), in
    `dtype` ("auto": the dtype the base folder stores, so untouched weights stay bit-identical)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def train_step(
    *, documents: bool, train_path: str, model_dir: str, lora: dict, seed: int, device: str,
    out_dir: str, log_path: str, init_adapter: str | None = None,
) -> None:
    """The fine-tuning step of every experiment kind: a LoRA adapter on a table of documents
    (the kept rows' text) or of chats (system, user, assistant), written atomically with its
    training log. `seed` is the step's own (see seeds.derive_seed). `init_adapter`: an adapter
    to go on training (see train_lora) instead of a new one."""
    import polars as pl

    from alignlab import artifacts, timings

    tokenizer = load_tokenizer(model_dir)
    table = artifacts.read_table(train_path)
    if documents:
        examples = document_examples(tokenizer, table.filter(pl.col("kept"))["text"], lora["max_length"])
    else:
        examples = chat_examples(tokenizer, table.iter_rows(named=True), lora["max_length"])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with artifacts.atomic_dir(out_dir) as tmp:
        log = train_lora(model_dir, examples, lora, seed=seed, out_dir=str(tmp), pad_id=pad_id, device=device,
                         init_adapter=init_adapter)
        artifacts.write_table(log, log_path, "train_log", params=lora)
    timings.record("train", log[-1]["seconds"], items=len(log), output_tokens=log[-1]["tokens"])
