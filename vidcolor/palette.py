"""A reference palette: the chroma histogram of a colour photo the user trusts.

The shipped model's largest held-out error is the palette of the whole image, not its edges: with
each selection photo's own chroma histogram as a prior, its PSNR gain over grey went from +0.44 to
+2.26 dB, while histograms of the nearest training photos gave at most +0.51 dB
(benchmarks/model_training/palette_probe.json). A user who has one colour reference for a film (a
production still, a colour frame of the same scene) can hand that knowledge over with
``--reference``; the model then leans towards those colours where it is unsure.

A palette is a histogram of a photo's Lab ab over a fixed grid (cells of 10 ab units), so it does
not depend on any model's bins. Its text form is canonical (sorted cells, rounded weights): it is
part of a run's settings and so of its run id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

GRID_STEP = 10  # ab units per cell
AB_LIMIT = 110  # |a|, |b| of the outermost cell centres
HISTOGRAM_SHORT_SIDE = 64  # the photo is area-resized to this first: the bins head's resolution
MIN_WEIGHT = 1e-4  # cells below this are noise (a few pixels of a 64 px thumbnail)


def head_refusal(model: str, head: str) -> str | None:
    """Why a generator with this output head cannot follow a palette, or None: only a
    distribution over colours ("bins") can be given an image-level prior."""
    if head == "bins":
        return None
    return f"{model}: this model predicts ab directly, not a distribution over colours, so it cannot follow a reference palette"


@dataclass(frozen=True)
class Palette:
    """Cells (a, b, weight) of the ab grid; weights > 0, summing to 1."""

    cells: tuple[tuple[int, int, float], ...]

    def to_text(self) -> str:
        return json.dumps([[a, b, w] for a, b, w in self.cells], separators=(",", ":"))

    @classmethod
    def parse(cls, text: str) -> "Palette":
        """The inverse of ``to_text``; ValueError saying what is wrong."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("palette is not JSON") from None
        if not isinstance(raw, list) or not raw:
            raise ValueError("palette must be a non-empty list of [a, b, weight] cells")
        cells = []
        for cell in raw:
            if (not isinstance(cell, list) or len(cell) != 3
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in cell)):
                raise ValueError(f"palette cell {cell!r} is not [a, b, weight]")
            a, b, w = cell
            if a % GRID_STEP or b % GRID_STEP or abs(a) > AB_LIMIT or abs(b) > AB_LIMIT:
                raise ValueError(f"palette cell {cell!r} is not on the ab grid (multiples of {GRID_STEP} up to {AB_LIMIT})")
            if not w > 0:
                raise ValueError(f"palette cell {cell!r} has a weight that is not positive")
            cells.append((int(a), int(b), float(w)))
        total = sum(w for _, _, w in cells)
        if abs(total - 1) > 1e-2:
            raise ValueError(f"palette weights sum to {total:.4f}, not 1")
        return cls(tuple(sorted(cells)))

    def weights_at(self, centres: np.ndarray) -> np.ndarray:
        """The palette's weights moved onto a model's bins (Q, 2): each cell to its nearest centre."""
        centres = np.asarray(centres, dtype=np.float32)
        out = np.zeros(len(centres), dtype=np.float64)
        for a, b, w in self.cells:
            out[np.argmin((centres[:, 0] - a) ** 2 + (centres[:, 1] - b) ** 2)] += w
        return out / out.sum()


def palette_from_ab(ab: np.ndarray) -> Palette:
    """Histogram of ab values (..., 2) over the grid; rounded so equal photos give equal text."""
    ab = np.asarray(ab, dtype=np.float32).reshape(-1, 2)
    q = np.clip(np.rint(ab / GRID_STEP), -AB_LIMIT // GRID_STEP, AB_LIMIT // GRID_STEP).astype(np.int64)
    side = 2 * (AB_LIMIT // GRID_STEP) + 1
    flat = (q[:, 0] + AB_LIMIT // GRID_STEP) * side + (q[:, 1] + AB_LIMIT // GRID_STEP)
    counts = np.bincount(flat, minlength=side * side).astype(np.float64) / len(flat)
    keep = np.flatnonzero(counts >= MIN_WEIGHT)
    weights = counts[keep] / counts[keep].sum()
    rounded = np.round(weights, 4)
    cells = [(int((i // side - AB_LIMIT // GRID_STEP) * GRID_STEP), int((i % side - AB_LIMIT // GRID_STEP) * GRID_STEP), float(w))
             for i, w in zip(keep, rounded) if w > 0]
    return Palette(tuple(sorted(cells)))


def palette_from_rgb(rgb: np.ndarray) -> Palette:
    """The palette of an RGB uint8 photo (H, W, 3)."""
    import cv2

    from vidcolor.color import rgb_to_lab

    rgb = np.asarray(rgb)
    h, w = rgb.shape[:2]
    s = HISTOGRAM_SHORT_SIDE / min(h, w)
    if s < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return palette_from_ab(rgb_to_lab(rgb[..., :3].astype(np.float32) / 255.0)[..., 1:])

