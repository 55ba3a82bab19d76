"""Training data: image folders preloaded once into uint8 caches (one array per source, mixed by a
share of every batch), random crops and flips, and synthetic-motion clips made from stills with a
known random affine motion."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.atomic import atomic_path
from vidcolor.media.still import list_images



def build_cache(folder: str | Path, size: int = 192, cache_dir: str | Path = "/tmp/vidcolor_cache",
                whole: bool = False) -> np.ndarray:
    """All images of ``folder``, short side resized to ``size``, as one uint8 array (N, size, size, 3)
    RGB of squares; cached as .npy keyed by the folder listing. Each photo gives its centre square,
    or with ``whole`` the squares at both ends of its long side (one square when the photo is within
    1/8 of square), so no part of a landscape or portrait photo is thrown away."""
    import cv2

    files = list_images(folder)
    if not files:
        raise ValueError(f"{folder}: no images")
    listing = "\n".join(f"{p}:{p.stat().st_size}" for p in files) + f"|{size}" + ("|whole" if whole else "")
    key = hashlib.sha256(listing.encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"images_{key}.npy"
    if cache.exists():
        return np.load(cache)
    squares = []
    for p in files:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{p}: not a readable image")
        h, w = bgr.shape[:2]
        s = size / min(h, w)
        bgr = cv2.resize(bgr, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        if whole and max(h, w) - size >= size // 8:
            offsets = [(0, 0), (h - size, w - size)]
        else:
            offsets = [((h - size) // 2, (w - size) // 2)]
        squares.extend(rgb[y:y + size, x:x + size] for y, x in offsets)
    out = np.stack(squares)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        np.save(tmp, out)
    return out


class PhotoSources:
    """Training photos from several folders, one cached array each. Every batch takes a fixed share
    of its crops from each source (stochastic rounding keeps the expected share exact), whatever the
    folders' sizes: a large folder of a few classes then cannot dominate the palette the model learns."""

    def __init__(self, arrays: list[np.ndarray], shares: list[float]):
        if len(arrays) != len(shares) or not arrays:
            raise ValueError("one share per source is needed")
        if any(s < 0 for s in shares) or sum(shares) <= 0:
            raise ValueError(f"source shares must be >= 0 and not all 0, got {shares}")
        total = float(sum(shares))
        self.arrays = list(arrays)
        self.shares = [s / total for s in shares]
        self.size = arrays[0].shape[1]
        if any(a.shape[1] != self.size for a in arrays):
            raise ValueError("all sources must be cached at the same size")

    def __len__(self) -> int:
        return sum(len(a) for a in self.arrays)

    def pick(self, batch: int, gen: torch.Generator) -> list[tuple[int, int]]:
        """(source, index) of each crop of a batch, sources in random order within the batch (the
        perceptual loss looks at the first crops only). One source draws exactly as a plain array
        did, so single-folder runs keep their random stream."""
        if len(self.arrays) == 1:
            return [(0, i) for i in torch.randint(0, len(self.arrays[0]), (batch,), generator=gen).tolist()]
        counts, left = [], batch
        for share in self.shares[:-1]:
            want = batch * share
            k = int(want) + int(torch.rand((), generator=gen).item() < want - int(want))
            counts.append(min(k, left))
            left -= counts[-1]
        counts.append(left)
        picks = []
        for s, k in enumerate(counts):
            picks += [(s, i) for i in torch.randint(0, len(self.arrays[s]), (k,), generator=gen).tolist()]
        order = torch.randperm(batch, generator=gen).tolist()
        return [picks[j] for j in order]

    def image(self, source: int, index: int) -> np.ndarray:
        return self.arrays[source][index]


def random_crops(images: np.ndarray | PhotoSources, batch: int, crop: int, gen: torch.Generator,
                 min_scale: float = 0.6, tone_jitter: float = 0.0) -> torch.Tensor:
    """(batch, 3, crop, crop) float RGB in [0, 1]: random image (from ``PhotoSources``: each source
    with its share of the batch), random-size square crop (side between ``min_scale`` and 1 of the
    cached side), resized to ``crop``, random horizontal flip, and with ``tone_jitter`` > 0 a random
    gamma exp(U(-j, j)) on all three channels (a different tone curve of the same scene; the random
    stream is unchanged when it is off)."""
    sources = images if isinstance(images, PhotoSources) else PhotoSources([images], [1.0])
    size = sources.size
    out = []
    for s, i in sources.pick(batch, gen):
        side = int(size * (min_scale + (1 - min_scale) * torch.rand((), generator=gen).item()))
        side = max(side, min(crop, size))
        y = int(torch.randint(0, size - side + 1, (), generator=gen))
        x = int(torch.randint(0, size - side + 1, (), generator=gen))
        t = torch.from_numpy(sources.image(s, i)[y:y + side, x:x + side]).permute(2, 0, 1).float()[None] / 255.0
        if side != crop:
            t = F.interpolate(t, size=(crop, crop), mode="bilinear", align_corners=False, antialias=True)
        if torch.rand((), generator=gen).item() < 0.5:
            t = t.flip(-1)
        if tone_jitter > 0:
            gamma = math.exp(tone_jitter * (2 * torch.rand((), generator=gen).item() - 1))
            t = t.clamp(0, 1) ** gamma
        out.append(t)
    return torch.cat(out).clamp(0, 1)


def _affine(angle: float, scale: float, tx: float, ty: float) -> torch.Tensor:
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return torch.tensor([[c, -s, tx], [s, c, ty], [0.0, 0.0, 1.0]])


def motion_clips(images: np.ndarray | PhotoSources, clips: int, frames: int, crop: int, gen: torch.Generator):
    """Synthetic-motion clips from stills. Returns (rgb, rel):

    - rgb: (clips * frames, 3, crop, crop) in [0, 1], frame k of a clip = the still sampled through
      the affine A_k = M^k (normalised coordinates, output -> input, as ``affine_grid`` uses);
    - rel: (clips, frames - 1, 2, 3): the affine R_t with frame_{t+1}(x) = frame_t(R_t x), i.e.
      ``grid_sample(frame_t, affine_grid(R_t))`` reproduces frame_{t+1} (where it lies inside).
    """
    base = random_crops(images, clips, crop, gen, min_scale=0.75)
    rgb, rels = [], []
    for c in range(clips):
        r = torch.rand(4, generator=gen) * 2 - 1
        step = _affine(0.03 * r[0].item(), 1 + 0.03 * r[1].item(), 0.06 * r[2].item(), 0.06 * r[3].item())
        a0 = _affine(0.0, 0.85, 0.0, 0.0)  # zoomed in a little so the motion stays mostly inside
        mats = [a0]
        for _ in range(frames - 1):
            mats.append(mats[-1] @ step)
        theta = torch.stack([m[:2] for m in mats])
        grid = F.affine_grid(theta, (frames, 3, crop, crop), align_corners=False)
        rgb.append(F.grid_sample(base[c:c + 1].expand(frames, -1, -1, -1), grid, mode="bilinear",
                                 padding_mode="reflection", align_corners=False))
        rels.append(torch.stack([(torch.linalg.inv(mats[t]) @ mats[t + 1])[:2] for t in range(frames - 1)]))
    return torch.cat(rgb).clamp(0, 1), torch.stack(rels)


def warp(x: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp (N, C, H, W) by (N, 2, 3) affines; returns the warped maps and the validity mask."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = ((grid.abs() <= 1).all(dim=-1)).unsqueeze(1).to(x.dtype)
    return out, inside
