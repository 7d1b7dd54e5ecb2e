"""A toy transformer trained from scratch on a character-level task, in plain torch.

The model is a small GPT-2 (transformers' GPT2LMHeadModel with a config of our own: a few
layers, a character vocabulary), small enough to train on 2 CPU cores in a minute or two.
Examples are (prompt, answer) strings; the loss falls on the answer and its end mark only.
Decoding is greedy. Full fine-tuning (no adapters): the lock trains from scratch, an unlock
continues from the locked weights.
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import torch

END, PAD = "$", "_"
IGNORE = -100


class Vocab:
    def __init__(self, alphabet: str):
        chars = sorted(set(alphabet) - {END, PAD})
        self.chars = [PAD, END, *chars]
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.index[c] for c in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the toy model's vocabulary") from None

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            c = self.chars[i]
            if c == END:
                break
            out.append(c)
        return "".join(out)


def build(vocab: Vocab, cfg: dict[str, Any], seed: int, n_positions: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(vocab), n_positions=n_positions, n_embd=cfg["d_model"], n_layer=cfg["n_layers"],
        n_head=cfg["n_heads"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=vocab.index[END], eos_token_id=vocab.index[END], pad_token_id=vocab.index[PAD],
    )
    return GPT2LMHeadModel(config)


def _batch(vocab: Vocab, pairs: Sequence[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    seqs, labels = [], []
    for prompt, answer in pairs:
        p, a = vocab.encode(prompt), vocab.encode(answer + END)
        seqs.append(p + a)
        labels.append([IGNORE] * len(p) + a)
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), vocab.index[PAD], dtype=torch.long)
    lab = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    for i, (s, l) in enumerate(zip(seqs, labels)):
        ids[i, : len(s)] = torch.tensor(s)
        lab[i, : len(l)] = torch.tensor(l)
    return ids, lab


def train(
    model, vocab: Vocab, pairs: Sequence[tuple[str, str]], *, steps: int, batch_size: int, learning_rate: float,
    seed: int, warmup_ratio: float = 0.05, weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """`steps` optimizer steps on batches drawn from `pairs` (epochs of a seeded permutation;
    a batch never exceeds the set), linear warmup then cosine decay. Returns the training log."""
    if not pairs:
        raise ValueError("no training examples")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    warmup = max(1, int(warmup_ratio * steps))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    size = min(batch_size, len(pairs))
    order: list[int] = []
    log, start, epoch, seen = [], time.perf_counter(), -1, 0
    for step in range(steps):
        if len(order) < size:
            order = torch.randperm(len(pairs), generator=generator).tolist()
            epoch += 1
        chosen, order = order[:size], order[size:]
        ids, labels = _batch(vocab, [pairs[i] for i in chosen])
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        seen += int((labels != IGNORE).sum())
        seconds = time.perf_counter() - start
        log.append({"step": step + 1, "epoch": epoch, "loss": float(loss.detach()),
                    "learning_rate": sched.get_last_lr()[0], "tokens": seen, "seconds": seconds,
                    "tokens_per_second": seen / max(seconds, 1e-9)})
    model.eval()
    return log


@torch.no_grad()
def generate(model, vocab: Vocab, prompts: Sequence[str], max_new: int, batch_size: int = 256) -> list[str]:
    """Greedy answers (up to the end mark or `max_new` characters). Prompts are batched by
    length, so no batch needs padding."""
    model.eval()
    out: list[str | None] = [None] * len(prompts)
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for idx in by_len.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            ids = torch.tensor([vocab.encode(prompts[i]) for i in chunk])
            start = ids.shape[1]
            for _ in range(max_new):
                nxt = model(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)
                ids = torch.cat([ids, nxt], dim=1)
            for i, row in zip(chunk, ids[:, start:].tolist()):
                out[i] = vocab.decode(row)
    return out  # type: ignore[return-value]
