"""Torch versions of ``vidcolor.color`` (same constants, same formulas, differentiable).

Used by the model (grey input for the encoder), the training losses (perceptual loss on the RGB of
predicted Lab) and the evaluation. Tensors are channel-first: (..., 3, H, W) for RGB/Lab, values as
in ``vidcolor.color``: sRGB in [0, 1]; L in [0, 100]; a, b roughly in [-110, 110].
"""

from __future__ import annotations

import torch

from vidcolor.color import _RGB_TO_XYZ, _WHITE, _XYZ_TO_RGB

_D = 6 / 29


def _mat(m, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(m, dtype=x.dtype, device=x.device)


def srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: torch.Tensor) -> torch.Tensor:
    c = c.clamp(0.0, 1.0)
    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def _f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _D**3, t.clamp(min=_D**3) ** (1 / 3), t / (3 * _D * _D) + 4 / 29)


def _f_inv(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _D, t**3, 3 * _D * _D * (t - 4 / 29))


def _apply(m, x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", _mat(m, x), x) if dim == -3 else x


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (..., 3, H, W) in [0, 1] -> Lab (..., 3, H, W)."""
    xyz = _apply(_RGB_TO_XYZ, srgb_to_linear(rgb), -3) / _mat(_WHITE, rgb).view(3, 1, 1)
    fx, fy, fz = _f(xyz).unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab (..., 3, H, W) -> sRGB in [0, 1] (out-of-gamut clipped)."""
    L, a, b = lab.unbind(-3)
    fy = (L + 16) / 116
    fx = fy + a / 500
    fz = fy - b / 200
    xyz = torch.stack([_f_inv(fx), _f_inv(fy), _f_inv(fz)], dim=-3) * _mat(_WHITE, lab).view(3, 1, 1)
    return linear_to_srgb(_apply(_XYZ_TO_RGB, xyz, -3))


def lightness_to_gray(lightness: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> the grey sRGB level in [0, 1] with that lightness (a = b = 0)."""
    y = _f_inv((lightness + 16) / 116)
    return linear_to_srgb(y)
