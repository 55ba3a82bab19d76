"""Colour-space conversions shared by the pipeline, the model and the evaluation.

All Lab values are CIE L*a*b* under D65 of sRGB colours: L in [0, 100], a and b roughly in
[-110, 110]. The film's own luma is never recomputed from Lab: the pipeline keeps the source Y
plane and only derives the chroma planes (Cb, Cr) from the predicted ab, see ``chroma_from_lab``.
"""

from __future__ import annotations

import numpy as np

# D65 white point, sRGB primaries.
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float32,
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ).astype(np.float32)

# Y'CbCr matrices: (Kr, Kb) per standard.
YCBCR_COEFFS = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float32), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055).astype(np.float32)


def _f(t: np.ndarray) -> np.ndarray:
    d = 6 / 29
    return np.where(t > d**3, np.cbrt(t), t / (3 * d * d) + 4 / 29)


def _f_inv(t: np.ndarray) -> np.ndarray:
    d = 6 / 29
    return np.where(t > d, t**3, 3 * d * d * (t - 4 / 29))


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1], shape (..., 3) -> Lab, shape (..., 3), float32."""
    xyz = srgb_to_linear(rgb) @ _RGB_TO_XYZ.T / _WHITE
    fx, fy, fz = (_f(xyz[..., i]) for i in range(3))
    lab = np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], axis=-1)
    return lab.astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Lab, shape (..., 3) -> sRGB in [0, 1] (out-of-gamut colours clipped), float32."""
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    xyz = np.stack([_f_inv(fx), _f_inv(fy), _f_inv(fz)], axis=-1) * _WHITE
    return linear_to_srgb(xyz @ _XYZ_TO_RGB.T)


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """Grey level in [0, 1] (gamma-encoded, as a B&W film's luma is) -> L in [0, 100]."""
    return (116 * _f(srgb_to_linear(gray)) - 16).astype(np.float32)


_L_LUT_FULL = gray_to_lightness(np.arange(256, dtype=np.float32) / 255.0)
_L_LUT_LIMITED = gray_to_lightness(np.clip((np.arange(256, dtype=np.float32) - 16) / 219.0, 0, 1))


def luma_to_lightness(y: np.ndarray, full_range: bool = False, bits: int = 8) -> np.ndarray:
    """Y' plane of ``bits`` bits (limited range 16-235 at 8 bits unless ``full_range``) -> Lab L in
    [0, 100], float32. Deeper luma is rounded to 8 bits first: L only steers the chroma."""
    lut = _L_LUT_FULL if full_range else _L_LUT_LIMITED
    if bits > 8:
        shift = bits - 8
        y = np.minimum((np.asarray(y, dtype=np.uint32) + (1 << (shift - 1))) >> shift, 255)
    return lut[np.asarray(y, dtype=np.uint8)]


def chroma_from_lab(
    lightness: np.ndarray,
    ab: np.ndarray,
    matrix: str = "bt601",
    full_range: bool = False,
    bits: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Cb and Cr planes (uint8; uint16 when ``bits`` > 8) for pixels of Lab (lightness, ab).

    ``lightness`` (H, W) and ``ab`` (H, W, 2) must have the same size: the caller computes them at
    the chroma planes' own resolution, so a dark pixel gets the small chroma a dark colour has.
    """
    kr, kb = YCBCR_COEFFS[matrix]
    kg = 1 - kr - kb
    rgb = lab_to_rgb(np.concatenate([lightness[..., None], ab], axis=-1))
    y = kr * rgb[..., 0] + kg * rgb[..., 1] + kb * rgb[..., 2]
    cb = (rgb[..., 2] - y) / (2 * (1 - kb))
    cr = (rgb[..., 0] - y) / (2 * (1 - kr))
    scale, offset = (255.0, 128.0) if full_range else (224.0, 128.0)
    if bits > 8:
        step = float(1 << (bits - 8))
        top = (1 << bits) - 1
        scale, offset = (top * 1.0, 128.0 * step) if full_range else (224.0 * step, 128.0 * step)
        return (np.clip(np.rint(cb * scale + offset), 0, top).astype(np.uint16),
                np.clip(np.rint(cr * scale + offset), 0, top).astype(np.uint16))
    cb8 = np.clip(np.rint(cb * scale + offset), 0, 255).astype(np.uint8)
    cr8 = np.clip(np.rint(cr * scale + offset), 0, 255).astype(np.uint8)
    return cb8, cr8


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, matrix: str = "bt601",
                 full_range: bool = False) -> np.ndarray:
    """8-bit planes of one size -> sRGB in [0, 1] (for metrics and tests)."""
    kr, kb = YCBCR_COEFFS[matrix]
    kg = 1 - kr - kb
    if full_range:
        yf = y.astype(np.float32) / 255.0
        cbf = (cb.astype(np.float32) - 128) / 255.0
        crf = (cr.astype(np.float32) - 128) / 255.0
    else:
        yf = (y.astype(np.float32) - 16) / 219.0
        cbf = (cb.astype(np.float32) - 128) / 224.0
        crf = (cr.astype(np.float32) - 128) / 224.0
    r = yf + 2 * (1 - kr) * crf
    b = yf + 2 * (1 - kb) * cbf
    g = (yf - kr * r - kb * b) / kg
    return np.clip(np.stack([r, g, b], axis=-1), 0, 1).astype(np.float32)
