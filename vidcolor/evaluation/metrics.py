"""Image-quality metrics on uint8 / [0, 1] RGB numpy arrays (H, W, 3)."""

from __future__ import annotations

import math

import numpy as np

PSNR_CAP = 100.0  # identical images: PSNR is infinite; reported as this cap


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two RGB images of one size (uint8 -> peak 255). Identical -> PSNR_CAP."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse <= 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10 * math.log10(peak * peak / mse))


def _gauss_filter(x: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(x, (11, 11), sigma, borderType=cv2.BORDER_REFLECT)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian 11x11 window, sigma 1.5) over the RGB channels."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    vals = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]
        mx, my = _gauss_filter(x), _gauss_filter(y)
        sxx = _gauss_filter(x * x) - mx * mx
        syy = _gauss_filter(y * y) - my * my
        sxy = _gauss_filter(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(m.mean())
    return float(np.mean(vals))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk (2003) colourfulness M on 0-255 RGB: sqrt(s_rg^2 + s_yb^2) +
    0.3 sqrt(m_rg^2 + m_yb^2), rg = R - G, yb = (R + G) / 2 - B. A grey image gives 0."""
    x = rgb.astype(np.float64)
    if x.max() <= 1.0 and rgb.dtype != np.uint8:
        x = x * 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(math.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * math.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
