"""When to compute in bf16: one rule for inference and training."""

from __future__ import annotations

import torch


def native_bf16(device: str) -> bool:
    """The device computes bf16 natively: a GPU that supports it, or a CPU with AMX or AVX-512 BF16
    (elsewhere on a CPU it is emulated, slower than fp32)."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
                or getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


def use_bf16(device: str, choice: str = "auto") -> bool:
    """``choice``: fp32, bf16, or auto (bf16 where native)."""
    choice = (choice or "auto").lower()
    if choice not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {choice}")
    return choice == "bf16" or (choice == "auto" and native_bf16(device))
