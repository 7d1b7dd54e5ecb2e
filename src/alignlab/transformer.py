"""Running a Hugging Face causal LM in-process (not through vLLM): loading it with its tokenizer,
and right-padded batches of token ids."""

from __future__ import annotations

import math
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


def option_logprobs(model, tokenizer, prompts: Sequence[str], options: Sequence[Sequence[str]],
                  batch_size: int = 16, desc: str = "options") -> list[list[float]]:
    """Per prompt, per option: the mean log-probability per token of " " + option right after
    the prompt (one forward pass per (prompt, option) sequence, in batches)."""
    import torch
    from tqdm import tqdm

    seqs, owners = [], []
    for i, (p, opts) in enumerate(zip(prompts, options)):
        p_ids = tokenizer(p, add_special_tokens=True)["input_ids"]
        for o in opts:
            o_ids = tokenizer(" " + o, add_special_tokens=False)["input_ids"]
            seqs.append((p_ids + o_ids, len(p_ids)))
            owners.append(i)
    device = next(model.parameters()).device
    scores: list[float] = []
    batches = pad_batches([s for s, _ in seqs], batch_size, pad_id(tokenizer))
    with torch.no_grad():
        for b, (ids, mask) in enumerate(tqdm(batches, total=math.ceil(len(seqs) / batch_size), desc=desc,
                                             mininterval=2)):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for j, (s, start) in enumerate(seqs[b * batch_size:(b + 1) * batch_size]):
                # Only the option's positions: each token predicted from the one before it.
                logp = torch.log_softmax(logits[j, start - 1:len(s) - 1].float(), -1).cpu()
                scores.append(float(logp[torch.arange(len(s) - start), torch.tensor(s[start:])].mean()))
    out: list[list[float]] = [[] for _ in prompts]
    for i, s in zip(owners, scores):
        out[i].append(s)
    return out


def switch_adapter(model, name: str, adapter_dir: str):
    """`model` with the LoRA adapter in `adapter_dir` loaded under `name` and made active: the
    plain model is wrapped with PEFT on the first adapter, later ones are loaded into the same
    wrapper. Returns the (possibly new) model object."""
    from alignlab import timings

    peft_name = name.replace(".", "_")  # PEFT names are module names: no "." (sdf.r1)
    with timings.timer(f"load model (adapter {name})"):
        if not hasattr(model, "peft_config"):
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir, adapter_name=peft_name)
        else:
            model.load_adapter(adapter_dir, adapter_name=peft_name)
        model.set_adapter(peft_name)
    return model
