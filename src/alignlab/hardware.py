"""What the machine does natively, where it decides a default (bf16 autocast, the engine's dtype)."""

from __future__ import annotations


def native_bf16(device: str) -> bool:
    """bf16 in hardware: CUDA with bf16 support, or a CPU with AVX512-BF16 or AMX. Elsewhere
    torch and vLLM emulate it, more slowly than float32."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_bf16_supported()
    if kind == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(cpu, c, lambda: False)() for c in checks)
    return False
