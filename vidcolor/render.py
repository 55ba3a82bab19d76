"""Render size: the frame size the model sees. One function for films and photos alike."""

from __future__ import annotations


def render_size(width: int, height: int, short_side: int, multiple: int, upscale: bool = False) -> tuple[int, int]:
    """(w, h) with the short side about ``short_side``, aspect kept, both multiples of ``multiple``.

    Films never upscale (``upscale=False``: a source smaller than the render size is kept at its own
    size, up to one rounding step), since a chunk's render-size luma is stored and more pixels only
    cost time. A single photo smaller than the render size is upscaled (``upscale=True``): the
    model was trained at that scale and sees objects at the size it knows."""
    scale = short_side / min(width, height)
    if not upscale:
        scale = min(1.0, scale)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    return w, h
