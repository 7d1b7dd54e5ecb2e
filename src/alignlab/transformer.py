"""Running a Hugging Face causal LM in-process (not through vLLM): loading it with its tokenizer,
and right-padded batches of token ids."""

from __future__ import annotations

from typing import Iterator, Sequence

import torch


def load_model(model_dir: str, device: str):
    """(tokenizer, model) of a model folder, the model in eval mode on `device`."""
    from alignlab import timings
    from alignlab.finetune import load_base, load_tokenizer

    with timings.timer("load model"):
        tokenizer = load_tokenizer(model_dir)
        model = load_base(model_dir, device)
        model.eval()
    return tokenizer, model


def pad_id(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its end-of-sequence token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def pad_batches(ids: Sequence[Sequence[int]], batch_size: int, pad: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input_ids, attention_mask) batches, right-padded, in the given order."""
    for i in range(0, len(ids), batch_size):
        chunk = ids[i:i + batch_size]
        width = max(len(x) for x in chunk)
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, x in enumerate(chunk):
            input_ids[j, :len(x)] = torch.tensor(x, dtype=torch.long)
            mask[j, :len(x)] = 1
        yield input_ids, mask
