"""How far a fine-tune moved a model, and where: the measurements behind `kind: model_diff`.

Three views of one (base, fine-tune) pair, each a plain function on Hugging Face causal LMs (or
their state dicts), so they run on any folder the resolver or `finetune.merge_adapter` writes:

- weights (`weight_stats`): per parameter tensor, the relative change ||W' - W|| / ||W||
  (Frobenius) and the cosine between W and W' (flattened), with the decoder layer and the
  matrix name parsed from the parameter name;
- activations (`activation_cosine`): on a fixed text set, the cosine similarity of the residual
  stream of base and fine-tune at every position of `output_hidden_states`, per token, averaged
  over real (non-padding) tokens; the mean over the decoder layers is the "global mean cosine"
  of Kutsyk et al.;
- SAE transfer (`train_sae`, `variance_explained`, `loss_with_sae`): a ReLU sparse autoencoder
  trained on the base's output of one decoder layer, scored on base and fine-tune by the variance
  of that layer's output it explains and by how much the next-token loss rises when its
  reconstruction replaces the layer's output (a forward hook on the decoder layer).

Cosines are computed as 1 - ||u - v||^2 / 2 on unit vectors, in float64: exactly 1 when the two
tensors are equal (the self-comparison sanity check), and accurate close to 1, where fine-tunes
live. Texts enter as token id lists (`encode`) and are right-padded per batch; padded positions
never count.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from alignlab.transformer import pad_batches as batches  # noqa: E402, F401

# The weight measures are shared with fact edits; imported here as model_diff's own.
from alignlab.weight_change import (  # noqa: E402, F401
    load_state_dict,
    parse_name,
    total_relative_change,
    unit_cosine,
    weight_stats,
    weight_stats_by_layer,
)


def encode(tokenizer, texts: Iterable[str], max_length: int) -> list[list[int]]:
    """Token ids per text (special tokens as the tokenizer adds them), cut to max_length; empty
    texts dropped."""
    out = []
    for t in texts:
        ids = tokenizer(t, add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
        if len(ids) >= 2:
            out.append(list(ids))
    if not out:
        raise ValueError("no text of at least 2 tokens to compare on")
    return out


def _device(model) -> torch.device:
    return next(model.parameters()).device


# ---- activations -----------------------------------------------------------------------------

@torch.no_grad()
def activation_cosine(base, tuned, ids: Sequence[Sequence[int]], batch_size: int = 8, pad_id: int = 0) -> list[dict[str, Any]]:
    """Per hidden-state index (0: embeddings, i: output of decoder layer i-1; the last one is after
    the final norm in Llama-style models), the mean over real tokens of the cosine between the
    base's and the fine-tune's residual vectors, with the token count and the lowest token
    cosine. Both models see the same batches."""
    base.eval()
    tuned.eval()
    sums: list[float] = []
    mins: list[float] = []
    n_tokens = 0
    for input_ids, mask in batches(ids, batch_size, pad_id):
        hb = base(input_ids=input_ids.to(_device(base)), attention_mask=mask.to(_device(base)),
                  output_hidden_states=True).hidden_states
        ht = tuned(input_ids=input_ids.to(_device(tuned)), attention_mask=mask.to(_device(tuned)),
                   output_hidden_states=True).hidden_states
        if len(hb) != len(ht):
            raise ValueError(f"the base has {len(hb) - 1} layers but the fine-tune {len(ht) - 1}")
        keep = mask.bool()
        if not sums:
            sums = [0.0] * len(hb)
            mins = [1.0] * len(hb)
        for k, (a, b) in enumerate(zip(hb, ht)):
            cos = unit_cosine(a.cpu()[keep], b.cpu()[keep], dim=-1)
            sums[k] += float(cos.sum())
            mins[k] = min(mins[k], float(cos.min()))
        n_tokens += int(keep.sum())
    return [
        {"layer": k, "n_tokens": n_tokens, "mean_cosine": s / n_tokens, "min_cosine": m}
        for k, (s, m) in enumerate(zip(sums, mins))
    ]


def global_mean_cosine(rows: Sequence[Mapping[str, Any]]) -> float:
    """The mean over decoder-layer outputs (hidden-state indices >= 1) of the per-layer mean token
    cosine: one number per pair, as in Kutsyk et al."""
    layers = [r["mean_cosine"] for r in rows if r["layer"] >= 1]
    return sum(layers) / len(layers)


# ---- hooks on one decoder layer --------------------------------------------------------------

def decoder_layers(model) -> nn.ModuleList:
    """The model's list of decoder layers (Llama, Mistral, Gemma, Qwen: model.model.layers;
    GPT-2: model.transformer.h; GPT-NeoX: model.gpt_neox.layers)."""
    for path in ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ValueError(f"cannot find the decoder layers of {type(model).__name__}")


def _split(output) -> tuple[torch.Tensor, Any]:
    if isinstance(output, tuple):
        return output[0], output[1:]
    return output, None


def _join(hidden: torch.Tensor, rest) -> Any:
    return hidden if rest is None else (hidden, *rest)


@contextmanager
def replace_layer_output(model, layer: int, fn):
    """Within the block, decoder layer `layer`'s output hidden states h become fn(h)."""
    def hook(_module, _inputs, output):
        hidden, rest = _split(output)
        return _join(fn(hidden).to(hidden.dtype), rest)

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def layer_activations(model, ids: Sequence[Sequence[int]], layer: int, batch_size: int = 8, pad_id: int = 0,
                      skip_first: bool = False) -> torch.Tensor:
    """The output of decoder layer `layer` at every real token, as an (n_tokens, d) float32 tensor
    on CPU (read with a forward hook: the same place `loss_with_sae` patches). skip_first: leave
    out each text's first position (the SAE's inputs; see `after_first`)."""
    model.eval()
    caught: list[torch.Tensor] = []

    def keep(h):
        caught.append(h.detach().float().cpu())
        return h

    out = []
    with replace_layer_output(model, layer, keep):
        for input_ids, mask in batches(ids, batch_size, pad_id):
            caught.clear()
            model(input_ids=input_ids.to(_device(model)), attention_mask=mask.to(_device(model)))
            keep_mask = mask.bool()
            if skip_first:
                keep_mask[:, 0] = False
            out.append(caught[0][keep_mask])
    return torch.cat(out)


def after_first(fn):
    """fn applied to every position but the first: a language model's first position is an
    attention sink whose residual norm dwarfs the others' (~130x in SmolLM2-135M's middle layer),
    so an SAE fitted or scored on it reports near-perfect variance explained whatever it does
    elsewhere; the SAE's training, scoring and patching all leave it alone."""
    def apply(h):
        out = h.clone()
        out[:, 1:] = fn(h[:, 1:])
        return out
    return apply


# ---- sparse autoencoder ----------------------------------------------------------------------

class SparseAutoencoder(nn.Module):
    """x -> f = relu((x / scale - b_dec) W_enc + b_enc) -> x_hat = (f W_dec + b_dec) * scale.
    `scale` (a buffer, fixed at training) makes the mean squared norm of the training inputs
    d_in, so the L1 coefficient means the same at every model width. Tied: W_dec = W_enc^T."""

    def __init__(self, d_in: int, d_hidden: int, tied: bool = False, generator: torch.Generator | None = None):
        super().__init__()
        self.tied = tied
        w = torch.empty(d_in, d_hidden)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)
        w = w / w.norm(dim=0, keepdim=True)  # unit-norm features
        self.W_enc = nn.Parameter(w.clone())
        self.b_enc = nn.Parameter(torch.zeros(d_hidden))
        self.W_dec = None if tied else nn.Parameter(w.t().clone())
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("scale", torch.ones(()))

    def decoder(self) -> torch.Tensor:
        return self.W_enc.t() if self.tied else self.W_dec

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu((x / self.scale - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return (f @ self.decoder() + self.b_dec) * self.scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encode(x)
        return self.decode(f), f


@dataclass
class SaeLog:
    steps: int
    final_mse: float  # on the normalized inputs, last 10% of steps
    final_l0: float   # active features per token, last 10% of steps


def train_sae(
    acts: torch.Tensor,
    d_hidden: int,
    l1: float = 1e-3,
    steps: int = 2000,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    tied: bool = False,
    seed: int = 0,
) -> tuple[SparseAutoencoder, SaeLog]:
    """Train an SAE on (n, d) activations: loss = mean squared error (normalized inputs, summed
    over dimensions) + l1 * sum of feature activations weighted by decoder norms, Adam, seeded
    batches. The decoder bias starts at the inputs' mean."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    acts = acts.float()
    n, d = acts.shape
    sae = SparseAutoencoder(d, d_hidden, tied=tied, generator=g)
    scale = (acts.pow(2).sum(-1).mean() / d).sqrt().clamp_min(1e-12)
    sae.scale.fill_(float(scale))
    x_all = acts / scale
    with torch.no_grad():
        sae.b_dec.copy_(x_all.mean(0))
    opt = torch.optim.Adam(sae.parameters(), lr=learning_rate)
    tail = max(1, steps // 10)
    mse_tail, l0_tail = [], []
    for step in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=g)
        x = x_all[idx]
        f = sae.encode(x * sae.scale)
        x_hat = f @ sae.decoder() + sae.b_dec
        mse = (x_hat - x).pow(2).sum(-1).mean()
        sparsity = (f * sae.decoder().norm(dim=1)).sum(-1).mean()
        loss = mse + l1 * sparsity
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= steps - tail:
            mse_tail.append(mse.item())
            l0_tail.append(float((f > 0).float().sum(-1).mean()))
    sae.eval()
    return sae, SaeLog(steps=steps, final_mse=sum(mse_tail) / len(mse_tail), final_l0=sum(l0_tail) / len(l0_tail))


@torch.no_grad()
def variance_explained(sae: SparseAutoencoder, acts: torch.Tensor) -> dict[str, float]:
    """1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 on these activations, and the mean number
    of active features per token (L0)."""
    acts = acts.float()
    x_hat, f = sae(acts)
    resid = (acts - x_hat).pow(2).sum()
    total = (acts - acts.mean(0)).pow(2).sum()
    return {
        "variance_explained": float(1.0 - resid / total) if total > 0 else float("nan"),
        "l0": float((f > 0).float().sum(-1).mean()),
        "n_tokens": int(acts.shape[0]),
    }


@torch.no_grad()
def next_token_loss(model, ids: Sequence[Sequence[int]], batch_size: int = 8, pad_id: int = 0) -> float:
    """Mean next-token cross-entropy over every real token that has a real successor."""
    model.eval()
    total, count = 0.0, 0
    for input_ids, mask in batches(ids, batch_size, pad_id):
        logits = model(input_ids=input_ids.to(_device(model)), attention_mask=mask.to(_device(model))).logits.float().cpu()
        targets = input_ids[:, 1:]
        valid = mask[:, 1:].bool()
        ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        ce = ce.view(targets.shape)[valid]
        total += float(ce.sum())
        count += int(valid.sum())
    return total / count


@torch.no_grad()
def loss_with_sae(model, sae: SparseAutoencoder, layer: int, ids: Sequence[Sequence[int]], batch_size: int = 8, pad_id: int = 0) -> dict[str, float]:
    """Next-token loss of `model` as is, with decoder layer `layer`'s output (past each text's first
    position) replaced by the SAE's reconstruction, and with it replaced by zeros (the scale of
    the damage); `loss_rise` is the
    SAE's loss minus the clean loss, and `loss_recovered` the share of the zero-ablation damage
    the SAE avoids (1: as good as the layer, 0: as bad as no layer output)."""
    clean = next_token_loss(model, ids, batch_size, pad_id)

    def recon(h):
        return sae(h.float().to(sae.scale.device))[0].to(h.device)

    with replace_layer_output(model, layer, after_first(recon)):
        patched = next_token_loss(model, ids, batch_size, pad_id)
    with replace_layer_output(model, layer, after_first(torch.zeros_like)):
        zeroed = next_token_loss(model, ids, batch_size, pad_id)
    damage = zeroed - clean
    return {
        "loss_clean": clean,
        "loss_sae": patched,
        "loss_zero": zeroed,
        "loss_rise": patched - clean,
        "loss_recovered": 1.0 - (patched - clean) / damage if damage > 0 else float("nan"),
    }
