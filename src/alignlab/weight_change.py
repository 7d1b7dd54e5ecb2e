"""How far a fine-tune moved a model's weights, tensor by tensor and layer by layer (any two
state dicts of one architecture).

Cosines are computed as 1 - ||u - v||^2 / 2 on unit vectors, in float64: exactly 1 when the two
tensors are equal, and accurate close to 1, where fine-tunes live.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.(.+)$")


def load_state_dict(folder: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a Hugging Face folder's safetensors files (sharded or not), on CPU, as
    stored (no model is built, so this is cheap even for big models)."""
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors files (weights are read from safetensors files)")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f), device="cpu"))
    return state


def parse_name(name: str) -> tuple[int, str]:
    """(decoder layer index or -1, matrix name): 'model.layers.3.mlp.up_proj.weight' ->
    (3, 'mlp.up_proj.weight'); 'model.embed_tokens.weight' -> (-1, 'model.embed_tokens.weight')."""
    m = _LAYER.search(name)
    if m:
        return int(m.group(1)), m.group(2)
    return -1, name


def unit_cosine(a: torch.Tensor, b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Cosine along `dim` as 1 - ||a/|a| - b/|b|||^2 / 2 (float64): exactly 1 for equal inputs.
    A zero vector gives cosine 1 with another zero vector, else 0."""
    a = a.double()
    b = b.double()
    na = a.norm(dim=dim, keepdim=True)
    nb = b.norm(dim=dim, keepdim=True)
    ua = torch.where(na > 0, a / na.clamp_min(1e-300), torch.zeros_like(a))
    ub = torch.where(nb > 0, b / nb.clamp_min(1e-300), torch.zeros_like(b))
    cos = 1.0 - (ua - ub).pow(2).sum(dim=dim) / 2.0
    both_zero = (na.squeeze(dim) == 0) & (nb.squeeze(dim) == 0)
    one_zero = (na.squeeze(dim) == 0) ^ (nb.squeeze(dim) == 0)
    cos = torch.where(both_zero, torch.ones_like(cos), cos)
    cos = torch.where(one_zero, torch.zeros_like(cos), cos)
    return cos.clamp(-1.0, 1.0)


def weight_stats(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """One row per parameter tensor present in both with the same shape: layer, matrix, number
    of elements, ||W||, ||W' - W||, relative change and cosine. Tensors only in one of them (a
    tied lm_head saved by one side only) are skipped; a shape mismatch is an error."""
    rows = []
    for name in sorted(set(base) & set(tuned)):
        w, w2 = base[name], tuned[name]
        if w.shape != w2.shape:
            raise ValueError(f"{name}: shape {tuple(w.shape)} in the base but {tuple(w2.shape)} in the fine-tune")
        if not (w.is_floating_point() and w2.is_floating_point()):
            continue
        w64, w264 = w.double().flatten(), w2.double().flatten()
        norm = float(w64.norm())
        delta = float((w264 - w64).norm())
        layer, matrix = parse_name(name)
        rows.append({
            "name": name,
            "layer": layer,
            "matrix": matrix,
            "numel": int(w.numel()),
            "norm": norm,
            "delta_norm": delta,
            "relative_change": delta / norm if norm > 0 else (0.0 if delta == 0 else math.inf),
            "cosine": float(unit_cosine(w64, w264, dim=0)),
        })
    if not rows:
        raise ValueError("the two models share no parameter tensors")
    return rows


def weight_stats_by_layer(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per decoder layer (-1: everything outside the layers), over all its tensors: the relative
    change sqrt(sum ||dW||^2 / sum ||W||^2) and the numel-weighted mean cosine."""
    groups: dict[int, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(int(r["layer"]), []).append(r)
    out = []
    for layer in sorted(groups):
        g = groups[layer]
        norm2 = sum(r["norm"] ** 2 for r in g)
        delta2 = sum(r["delta_norm"] ** 2 for r in g)
        numel = sum(r["numel"] for r in g)
        out.append({
            "layer": layer,
            "numel": numel,
            "relative_change": math.sqrt(delta2 / norm2) if norm2 > 0 else 0.0,
            "cosine": sum(r["cosine"] * r["numel"] for r in g) / numel,
        })
    return out


def total_relative_change(rows: Sequence[Mapping[str, Any]]) -> float:
    """sqrt(sum ||dW||^2 / sum ||W||^2) over every compared tensor: how far the pair moved."""
    norm2 = sum(r["norm"] ** 2 for r in rows)
    delta2 = sum(r["delta_norm"] ** 2 for r in rows)
    return math.sqrt(delta2 / norm2) if norm2 > 0 else 0.0


