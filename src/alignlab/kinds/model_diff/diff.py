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
def text_cosines(base, tuned, ids: Sequence[Sequence[int]], batch_size: int = 8, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Per text and hidden-state index (0: embeddings, i: output of decoder layer i-1; the last
    one is after the final norm in Llama-style models): the sum and the minimum over the text's
    real tokens of the cosine between the base's and the fine-tune's residual vectors, and the
    text's token count. `sums` and `mins` are (n_texts, n_hidden) float64, `counts` (n_texts,).
    Both models see the same batches. The per-text sums are what the bootstrap over texts
    resamples (`bootstrap_cosines`)."""
    base.eval()
    tuned.eval()
    sums, mins, counts = [], [], []
    for input_ids, mask in batches(ids, batch_size, pad_id):
        hb = base(input_ids=input_ids.to(_device(base)), attention_mask=mask.to(_device(base)),
                  output_hidden_states=True).hidden_states
        ht = tuned(input_ids=input_ids.to(_device(tuned)), attention_mask=mask.to(_device(tuned)),
                   output_hidden_states=True).hidden_states
        if len(hb) != len(ht):
            raise ValueError(f"the base has {len(hb) - 1} layers but the fine-tune {len(ht) - 1}")
        keep = mask.bool()
        # (layers, batch, positions): cosine per token, padding set to 0 for sums and 1 for minima
        cos = torch.stack([unit_cosine(a.cpu(), b.cpu(), dim=-1) for a, b in zip(hb, ht)])
        sums.append(torch.where(keep, cos, torch.zeros_like(cos)).sum(-1).t())
        mins.append(torch.where(keep, cos, torch.ones_like(cos)).amin(-1).t())
        counts.append(keep.sum(-1))
    return {"sums": torch.cat(sums).double(), "mins": torch.cat(mins).double(), "counts": torch.cat(counts).long()}


def layer_rows(per_text: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """Per hidden-state index: the mean over every real token of every text of the cosine (texts
    weighted by their token counts), the token count and the lowest token cosine."""
    n_tokens = int(per_text["counts"].sum())
    sums = per_text["sums"].sum(0)
    mins = per_text["mins"].amin(0)
    return [{"layer": k, "n_tokens": n_tokens, "mean_cosine": float(s) / n_tokens, "min_cosine": float(m)}
            for k, (s, m) in enumerate(zip(sums.tolist(), mins.tolist()))]


def activation_cosine(base, tuned, ids: Sequence[Sequence[int]], batch_size: int = 8, pad_id: int = 0) -> list[dict[str, Any]]:
    """Per hidden-state index, the mean over real tokens of the cosine between the base's and the
    fine-tune's residual vectors, with the token count and the lowest token cosine (see
    `text_cosines`)."""
    return layer_rows(text_cosines(base, tuned, ids, batch_size, pad_id))


# ---- intervals: a bootstrap over texts ---------------------------------------------------------

def bootstrap_indices(n_texts: int, n_resamples: int, seed: int) -> torch.Tensor:
    """(n_resamples, n_texts) text indices drawn with replacement, seeded. The same seed and
    text count give the same draws for every pair, so two pairs' resamples are paired."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n_texts, (n_resamples, n_texts), generator=g)


def resampled_layer_means(sums: torch.Tensor, counts: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(n_resamples, n_hidden): per resample of texts, the token-weighted mean cosine per layer."""
    return sums[idx].sum(1) / counts[idx].sum(1, keepdim=True).double()


def resampled_global_means(sums: torch.Tensor, counts: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(n_resamples,): per resample, the global mean cosine (mean over decoder layers, index >= 1)."""
    return resampled_layer_means(sums, counts, idx)[:, 1:].mean(1)


def percentile_interval(values: torch.Tensor, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2
    q = torch.quantile(values.double(), torch.tensor([alpha, 1.0 - alpha], dtype=torch.float64))
    return float(q[0]), float(q[1])


def adjacent_differences(ranked: Sequence[str], sums: Mapping[str, torch.Tensor], counts: torch.Tensor,
                         idx: torch.Tensor, confidence: float) -> list[dict[str, Any]]:
    """For each pair in `ranked` (moved most first) and the next one: the paired bootstrap
    interval of (next pair's global mean cosine - this pair's), on the same resampled texts for
    both. `distinct` is True when the interval excludes 0, i.e. the resampled texts agree that
    this pair moved more than the next; False when the ranking cannot tell the two apart. The
    last pair has no next (distinct None)."""
    out = []
    for a, b in zip(ranked, ranked[1:]):
        d = resampled_global_means(sums[b], counts, idx) - resampled_global_means(sums[a], counts, idx)
        lo, hi = percentile_interval(d, confidence)
        out.append({"pair": a, "next": b, "lo": lo, "hi": hi, "distinct": bool(lo > 0 or hi < 0)})
    if ranked:
        out.append({"pair": ranked[-1], "next": None, "lo": float("nan"), "hi": float("nan"), "distinct": None})
    return out


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


# ---- SAE features: which fire, how often, on base and fine-tune -------------------------------

@torch.no_grad()
def feature_stats(sae: SparseAutoencoder, acts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per SAE feature on these activations: `frequency`, the share of tokens on which it is
    active (> 0), and `mean_activation`, its mean over all tokens (0 where inactive)."""
    f = sae.encode(acts.float())
    return {"frequency": (f > 0).double().mean(0), "mean_activation": f.double().mean(0)}


def feature_transfer(freq_base: torch.Tensor, freq_tuned: torch.Tensor) -> dict[str, Any]:
    """Feature-level transfer from base to fine-tune on the same texts: features active on the
    base but never on the fine-tune (`dead_on_tuned`), never on the base but active on the
    fine-tune (`new_on_tuned`), never on the base (`dead_on_base`), and the correlation of the
    two activation-frequency vectors (NaN when either is constant)."""
    fb, ft = freq_base.double(), freq_tuned.double()
    if fb.shape != ft.shape:
        raise ValueError(f"{fb.numel()} features on the base but {ft.numel()} on the fine-tune")
    corr = float("nan")
    if fb.std() > 0 and ft.std() > 0:
        corr = float(torch.corrcoef(torch.stack([fb, ft]))[0, 1])
    return {
        "dead_on_tuned": int(((fb > 0) & (ft == 0)).sum()),
        "new_on_tuned": int(((fb == 0) & (ft > 0)).sum()),
        "dead_on_base": int((fb == 0).sum()),
        "frequency_correlation": corr,
    }


def l0_in_range(l0: float, l0_range: Sequence[float] | None) -> bool | None:
    """Whether an SAE's L0 (mean active features per token) lies in [lo, hi]; None without a
    range."""
    if l0_range is None:
        return None
    lo, hi = l0_range
    return bool(lo <= l0 <= hi)


# ---- a size-matched random reference ----------------------------------------------------------

@torch.no_grad()
def size_matched_perturbation(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor], seed: int,
                              rtol: float = 0.01, max_rounds: int = 30) -> dict[str, torch.Tensor]:
    """The base with every floating-point tensor moved in a random Gaussian direction by as much
    as the fine-tune moved it: ||W_ref - W|| = ||W' - W|| (Frobenius), per tensor; tensors the
    fine-tune left alone stay bit-identical. The result is stored in the base's dtype, whose
    rounding changes the realized norm (in bfloat16 a change below half a unit in the last
    place is lost), so the noise's scale is corrected until the realized norm is within `rtol`
    of the target (or `max_rounds` corrections). Tensors are drawn in sorted name order from one
    seeded generator."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name in sorted(base):
        w = base[name]
        if name not in tuned or not w.is_floating_point():
            out[name] = w
            continue
        if tuned[name].shape != w.shape:
            raise ValueError(f"{name}: shape {tuple(w.shape)} in the base but {tuple(tuned[name].shape)} in the fine-tune")
        w64 = w.double()
        target = float((tuned[name].double() - w64).norm())
        if target == 0.0:
            out[name] = w
            continue
        direction = torch.randn(w.shape, generator=g, dtype=torch.float64)
        direction /= direction.norm()
        scale = target
        best, best_gap = w, float("inf")
        for _ in range(max_rounds):
            cand = (w64 + scale * direction).to(w.dtype)
            realized = float((cand.double() - w64).norm())
            gap = abs(realized - target) / target
            if gap < best_gap:
                best, best_gap = cand, gap
            if gap <= rtol:
                break
            scale *= 2.0 if realized == 0.0 else target / realized
        out[name] = best
    return out


def size_match(real: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How closely a reference's per-tensor change matches a real pair's (rows of `weight_stats`):
    the largest relative gap |ref - real| / real over tensors the real pair changed, and the
    number of tensors whose change is zero on one side only."""
    ref = {r["name"]: r["delta_norm"] for r in reference}
    worst, mismatched = 0.0, 0
    for r in real:
        other = ref.get(r["name"])
        if other is None:
            mismatched += 1
            continue
        if r["delta_norm"] == 0.0 or other == 0.0:
            mismatched += int((r["delta_norm"] == 0.0) != (other == 0.0))
            continue
        worst = max(worst, abs(other - r["delta_norm"]) / r["delta_norm"])
    return {"max_relative_gap": worst, "mismatched_tensors": mismatched}


def size_matched(real, reference, tolerance: float) -> bool:
    """The reference control: every tensor's change within `tolerance` of the real pair's, and no
    tensor changed on one side only."""
    m = size_match(real, reference)
    return m["mismatched_tensors"] == 0 and m["max_relative_gap"] <= tolerance
