"""Video metrics of temporal quality: flicker (CDC, warp error), seams at chunk joins, and fidelity
to a colour original. numpy/OpenCV only, no learned weights.

- CDC (colour distribution consistency), exactly as TCVC's ``compute_JS_bgr`` (reused by
  ColorMNet): per RGB channel a 256-bin histogram divided by the pixel count; Jensen-Shannon
  divergence (natural log) between frames t and t+d, averaged over t, then over d = 1, 2, 4 and over
  the channels.
- Warp error (Lai et al. 2018): frame t+1 warped onto frame t by optical flow (OpenCV DIS) computed
  on the ORIGINAL luma, pixels failing the forward-backward check or on a motion boundary left out,
  mean squared RGB error in [0, 1] over the visible pixels, averaged over the pairs.
- Chroma warp error: the same on the Lab ab planes only (squared ab units). The output keeps the
  source's luma, so the RGB warp error of a colorized film is mostly the luma's own (motion the
  flow misses); this one isolates the colour flicker.
- Chroma change: mean Lab ab distance between neighbouring frames; a seam score divides the change
  where two chunks meet by the median change between neighbouring frames of the same scene. The
  flow seam score does the same with the motion-compensated change (RMS of the chroma warp error).

Everything that walks a video does so frame by frame (a film never sits in memory); the per-frame
series are small.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

CDC_DILATIONS = (1, 2, 4)


# --- CDC ----------------------------------------------------------------------------------------

def channel_histograms(rgb: np.ndarray) -> np.ndarray:
    """(3, 256) float64: per channel the 256-bin histogram of a uint8 RGB frame over its pixel count."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    n = rgb.shape[0] * rgb.shape[1]
    return np.stack([np.bincount(rgb[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.float64) / n


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log, as scipy.stats.entropy) over the last axis of two
    arrays of normalised histograms."""
    m = (p + q) / 2

    def kl(a):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(a > 0, a * np.log(a / m), 0.0)
        return t.sum(-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def _same_scene(n: int, d: int, scene_starts: Sequence[int] | None) -> np.ndarray:
    """Mask over t in [0, n-d): frames t and t+d lie in one scene."""
    if not scene_starts:
        return np.ones(max(0, n - d), dtype=bool)
    scene = np.searchsorted(np.asarray(sorted(scene_starts)), np.arange(n), side="right")
    return scene[: n - d] == scene[d:]


def cdc_from_histograms(hists: np.ndarray, dilations: Sequence[int] = CDC_DILATIONS,
                        scene_starts: Sequence[int] | None = None) -> float | None:
    """CDC of a clip from its (N, 3, 256) histograms. With ``scene_starts`` only pairs inside one
    scene count (TCVC measures cut-free clips). Dilations without any pair are skipped; None when
    no pair exists at all."""
    hists = np.asarray(hists, dtype=np.float64)
    per_d = []
    for d in dilations:
        if hists.shape[0] <= d:
            continue
        keep = _same_scene(hists.shape[0], d, scene_starts)
        if not keep.any():
            continue
        js = js_divergence(hists[:-d][keep], hists[d:][keep])  # (pairs, 3)
        per_d.append(js.mean(axis=0))  # mean over t, per channel
    if not per_d:
        return None
    return float(np.mean(np.mean(per_d, axis=0)))  # TCVC: weights 1/3 over d, then mean over channels


class CdcAccumulator:
    """``cdc_from_histograms`` over histograms fed one frame at a time, holding only the last
    max(dilations) of them: a whole film's CDC in constant memory."""

    def __init__(self, dilations: Sequence[int] = CDC_DILATIONS, scene_starts: Sequence[int] | None = None):
        from collections import deque

        self.dilations = tuple(dilations)
        self.starts = np.asarray(sorted(scene_starts)) if scene_starts else None
        self.recent: deque = deque(maxlen=max(self.dilations))  # (frame, scene, histograms)
        self.sums = {d: np.zeros(3) for d in self.dilations}
        self.pairs = dict.fromkeys(self.dilations, 0)
        self.frames = 0

    def add(self, hist: np.ndarray) -> None:
        """The next frame's (3, 256) histograms."""
        hist = np.asarray(hist, dtype=np.float64)
        scene = int(np.searchsorted(self.starts, self.frames, side="right")) if self.starts is not None else 0
        for t, s, h in self.recent:
            d = self.frames - t
            if d in self.sums and s == scene:
                self.sums[d] += js_divergence(h, hist)
                self.pairs[d] += 1
        self.recent.append((self.frames, scene, hist))
        self.frames += 1

    def value(self) -> float | None:
        per_d = [self.sums[d] / self.pairs[d] for d in self.dilations if self.pairs[d]]
        return float(np.mean(np.mean(per_d, axis=0))) if per_d else None


def cdc(frames: Iterable[np.ndarray], dilations: Sequence[int] = CDC_DILATIONS,
        scene_starts: Sequence[int] | None = None) -> float | None:
    """CDC of uint8 RGB frames (any iterable)."""
    hists = [channel_histograms(f) for f in frames]
    return cdc_from_histograms(np.stack(hists), dilations, scene_starts) if hists else None


# --- optical flow, warping, warp error ----------------------------------------------------------

class FlowEstimator:
    """OpenCV DIS optical flow on 8-bit luma."""

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
        self.dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, y_from: np.ndarray, y_to: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32 flow: pixel x of ``y_from`` moves to x + flow(x) in ``y_to``."""
        return self.dis.calc(np.ascontiguousarray(y_from), np.ascontiguousarray(y_to), None)


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx.flags.writeable = gy.flags.writeable = False
    return gx, gy


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at x + flow(x) (bilinear, edges replicated): the frame that ``flow`` points
    into, brought onto the frame it starts from."""
    h, w = flow.shape[:2]
    gx, gy = _grid(h, w)
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def visible_mask(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """(H, W) bool over the frame ``fw`` starts from: True where the forward flow ``fw`` and the
    backward flow ``bw`` agree (Sundaram et al.'s check, as Lai et al. use it), the target lies
    inside the frame, and the pixel is not on a motion boundary."""
    h, w = fw.shape[:2]
    fx, fy = fw[..., 0], fw[..., 1]
    bw_at = warp(bw, fw)
    bx, by = bw_at[..., 0], bw_at[..., 1]
    sx, sy = fx + bx, fy + by
    f_sq = fx * fx + fy * fy
    ok = sx * sx + sy * sy <= 0.01 * (f_sq + bx * bx + by * by) + 0.5
    grad = np.zeros((h, w), np.float32)
    dx, dy = fx[:, :-1] - fx[:, 1:], fy[:, :-1] - fy[:, 1:]
    grad[:, :-1] += dx * dx + dy * dy
    dx, dy = fx[:-1, :] - fx[1:, :], fy[:-1, :] - fy[1:, :]
    grad[:-1, :] += dx * dx + dy * dy
    ok &= grad <= 0.01 * f_sq + 0.002
    gx, gy = _grid(h, w)
    tx, ty = gx + fx, gy + fy
    ok &= (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return ok


def pair_warp_error(rgb_t: np.ndarray, rgb_t1: np.ndarray, fw: np.ndarray, visible: np.ndarray,
                    scale: float = 1 / 255.0) -> float:
    """Mean squared error (RGB in [0, 1]: ``scale`` 1/255 of uint8) between frame t and frame t+1
    warped onto it, over the visible pixels (all pixels when none is visible, as Lai et al.'s code
    does). With ``scale`` 1 and ab planes: the chroma-only warp error, in squared ab units."""
    a = rgb_t.astype(np.float32) * scale
    b = warp(rgb_t1.astype(np.float32) * scale, fw)
    sq = (a - b) ** 2
    if not visible.any():
        return float(sq.mean())
    return float(sq[visible].mean())


# --- chroma change and seams --------------------------------------------------------------------

def rgb_to_ab(rgb: np.ndarray) -> np.ndarray:
    """Lab ab (H, W, 2) float32 of a uint8 RGB frame (OpenCV's float Lab: a, b in CIE units)."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return lab[..., 1:]


def chroma_change(ab_prev: np.ndarray, ab_next: np.ndarray) -> float:
    """Mean Euclidean ab distance between two frames' chroma (same size)."""
    d = ab_next.astype(np.float32) - ab_prev.astype(np.float32)
    return float(np.sqrt((d ** 2).sum(-1)).mean())


def within_scene_changes(changes: np.ndarray, scene_starts: Sequence[int]) -> np.ndarray:
    """``changes[t]`` is the change from frame t-1 to t (``changes[0]`` unused, NaN). Returns the
    entries that compare two frames of one scene (a cut's jump is not flicker)."""
    changes = np.asarray(changes, dtype=np.float64)
    keep = np.ones(changes.shape[0], dtype=bool)
    keep[0] = False
    for s in scene_starts:
        if 0 <= s < keep.shape[0]:
            keep[s] = False
    return changes[keep & np.isfinite(changes)]


def jump_ratios(changes: np.ndarray, scene_starts: Sequence[int]) -> np.ndarray:
    """Each frame's chroma change over the median change inside scenes (NaN at frame 0 and at cuts).
    A static clip (median 0) scores 0 where nothing changes and inf where something does."""
    changes = np.asarray(changes, dtype=np.float64)
    inside = within_scene_changes(changes, scene_starts)
    median = float(np.median(inside)) if inside.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = changes / median if median > 0 else np.where(changes > 0, np.inf, 0.0)
    r = r.astype(np.float64)
    r[0] = np.nan
    for s in scene_starts:
        if 0 <= s < r.shape[0]:
            r[s] = np.nan
    return r


def seam_scores(changes: np.ndarray, scene_starts: Sequence[int], joins: Sequence[int]) -> dict[int, float]:
    """{join frame: score} for every chunk join that is not a cut: the chroma change between the two
    frames meeting there (join - 1 and join) over the median change between neighbouring frames of
    the same scene."""
    ratios = jump_ratios(changes, scene_starts)
    cuts = set(scene_starts)
    return {int(j): float(ratios[j]) for j in joins if j not in cuts and 0 < j < len(ratios)}


def plan_joins(chunks) -> list[int]:
    """Frames where a chunk's core starts inside the same scene as the previous chunk's
    (``chunks``: a plan's chunk table, ``vidcolor.plan.Chunk`` objects)."""
    return [c.core_start for p, c in zip(chunks[:-1], chunks[1:]) if c.scene == p.scene]


# --- a whole video ------------------------------------------------------------------------------

@dataclass
class VideoMeasures:
    """Per-frame series and whole-clip measures of one video (and its colour original)."""

    frames: int = 0
    chroma_change: list[float] = field(default_factory=list)  # [t]: frame t-1 -> t; [0] NaN
    warp_error: list[float] = field(default_factory=list)  # [t]: pair (t, t+1); NaN across a cut
    original_warp_error: list[float] = field(default_factory=list)
    original_chroma_change: list[float] = field(default_factory=list)
    chroma_warp_error: list[float] = field(default_factory=list)  # the same on Lab ab only (luma left out)
    original_chroma_warp_error: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    histograms: list[np.ndarray] = field(default_factory=list)
    original_histograms: list[np.ndarray] = field(default_factory=list)


def measure_frames(frames: Iterable[np.ndarray], original: Iterable[np.ndarray] | None = None,
                   scene_starts: Sequence[int] = (0,), measure_short_side: int | None = 360,
                   fidelity: bool = True) -> VideoMeasures:
    """Walk uint8 RGB frames (and the colour original's, same count) once: histograms at full size
    (CDC as the papers), chroma change and warp error at ``measure_short_side`` (None = full size;
    the flow and warp are the costly part), PSNR/SSIM against the original at full size.

    The flow comes from the luma of ``frames`` (the output keeps the source's luma, so it is the
    original luma) and is reused for the original's warp error, so both see the same motion."""
    from vidcolor.evaluation.metrics import psnr, ssim

    m = VideoMeasures()
    flow = FlowEstimator()
    cuts = set(scene_starts)
    orig_iter = iter(original) if original is not None else None
    prev = None  # (rgb_small, y_small, ab_small, orig_small)
    for t, rgb in enumerate(frames):
        orig = next(orig_iter, None) if orig_iter is not None else None
        if orig_iter is not None and orig is None:
            raise ValueError(f"the original has fewer frames than the video ({t})")
        if orig is not None and orig.shape != rgb.shape:
            orig = cv2.resize(orig, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
        m.histograms.append(channel_histograms(rgb))
        if orig is not None:
            m.original_histograms.append(channel_histograms(orig))
            if fidelity:
                m.psnr.append(psnr(rgb, orig))
                m.ssim.append(ssim(rgb, orig))
        small = _resize_short(rgb, measure_short_side)
        osmall = _resize_short(orig, measure_short_side) if orig is not None else None
        y = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        ab = rgb_to_ab(small)
        oab = rgb_to_ab(osmall) if osmall is not None else None
        if prev is None:
            m.chroma_change.append(float("nan"))
            if oab is not None:
                m.original_chroma_change.append(float("nan"))
        else:
            p_rgb, p_y, p_ab, p_orig, p_oab = prev
            m.chroma_change.append(chroma_change(p_ab, ab))
            if oab is not None:
                m.original_chroma_change.append(chroma_change(p_oab, oab))
            if t in cuts:
                m.warp_error.append(float("nan"))
                m.chroma_warp_error.append(float("nan"))
                if osmall is not None:
                    m.original_warp_error.append(float("nan"))
                    m.original_chroma_warp_error.append(float("nan"))
            else:
                fw, bw = flow(p_y, y), flow(y, p_y)
                vis = visible_mask(fw, bw)
                m.warp_error.append(pair_warp_error(p_rgb, small, fw, vis))
                m.chroma_warp_error.append(pair_warp_error(p_ab, ab, fw, vis, scale=1.0))
                if osmall is not None:
                    m.original_warp_error.append(pair_warp_error(p_orig, osmall, fw, vis))
                    m.original_chroma_warp_error.append(pair_warp_error(p_oab, oab, fw, vis, scale=1.0))
        prev = (small, y, ab, osmall, oab)
        m.frames = t + 1
    return m


def _resize_short(rgb: np.ndarray | None, short: int | None) -> np.ndarray | None:
    if rgb is None or short is None or min(rgb.shape[:2]) <= short:
        return rgb
    h, w = rgb.shape[:2]
    s = short / min(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _nanmean(xs) -> float | None:
    a = np.asarray(xs, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def summarize(m: VideoMeasures, scene_starts: Sequence[int] = (0,), joins: Sequence[int] = ()) -> dict:
    """The whole-clip figures: CDC (whole clip, as the papers, and pairs inside scenes only), warp
    error, their ratios to the original's, PSNR/SSIM, seam scores, the largest jump inside a scene."""
    hists = np.stack(m.histograms) if m.histograms else np.zeros((0, 3, 256))
    out: dict = {"frames": m.frames, "scene_starts": list(map(int, scene_starts))}
    out["cdc"] = cdc_from_histograms(hists)
    out["cdc_in_scenes"] = cdc_from_histograms(hists, scene_starts=scene_starts)
    out["warp_error"] = _nanmean(m.warp_error)
    if m.original_histograms:
        oh = np.stack(m.original_histograms)
        out["original_cdc"] = cdc_from_histograms(oh)
        out["cdc_ratio"] = _ratio(out["cdc"], out["original_cdc"])
        out["original_warp_error"] = _nanmean(m.original_warp_error)
        out["warp_error_ratio"] = _ratio(out["warp_error"], out["original_warp_error"])
        out["original_chroma_warp_error"] = _nanmean(m.original_chroma_warp_error)
    out["chroma_warp_error"] = _nanmean(m.chroma_warp_error)
    if m.original_chroma_warp_error:
        out["chroma_warp_error_ratio"] = _ratio(out["chroma_warp_error"], out["original_chroma_warp_error"])
    if m.psnr:
        out["psnr"] = float(np.mean(m.psnr))
        out["ssim"] = float(np.mean(m.ssim))
    changes = np.asarray(m.chroma_change, dtype=np.float64)
    inside = within_scene_changes(changes, scene_starts)
    out["median_chroma_change"] = float(np.median(inside)) if inside.size else None
    ratios = jump_ratios(changes, scene_starts)
    if np.isfinite(ratios).any():
        k = int(np.nanargmax(np.where(np.isfinite(ratios), ratios, np.nan)))
        out["largest_jump"] = {"frame": k, "ratio": float(ratios[k])}
    seams = seam_scores(changes, scene_starts, joins)
    out["seams"] = {str(k): v for k, v in seams.items()}
    out["max_seam_score"] = max(seams.values()) if seams else None
    if m.chroma_warp_error:
        # motion-compensated: the RMS ab difference after warping frame t onto t-1 along the flow,
        # so colour that merely moves with the picture does not count, only colour that changes
        rms = np.sqrt(np.concatenate([[np.nan], np.asarray(m.chroma_warp_error, dtype=np.float64)]))
        flow_seams = seam_scores(rms, scene_starts, joins)
        out["flow_seams"] = {str(k): v for k, v in flow_seams.items()}
        out["max_flow_seam_score"] = max(flow_seams.values()) if flow_seams else None
    if m.original_chroma_change:
        # the same ratio in the colour original: a join in a passage where reality itself changes
        # fast (a cyclist crossing close to the camera) scores high without any seam
        orig = seam_scores(np.asarray(m.original_chroma_change), scene_starts, joins)
        out["original_seams"] = {str(k): v for k, v in orig.items()}
    return out


def _ratio(a, b) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return float(a / b)


def per_scene(m: VideoMeasures, scene_starts: Sequence[int]) -> list[dict]:
    """CDC and warp error of each scene (and the original's when measured)."""
    bounds = list(scene_starts) + [m.frames]
    rows = []
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        row = {"scene": k, "start": int(a), "end": int(b),
               "cdc": cdc_from_histograms(np.stack(m.histograms[a:b])) if b > a else None,
               "warp_error": _nanmean(m.warp_error[a:b - 1])}
        if m.original_histograms:
            row["original_cdc"] = cdc_from_histograms(np.stack(m.original_histograms[a:b])) if b > a else None
            row["original_warp_error"] = _nanmean(m.original_warp_error[a:b - 1])
        rows.append(row)
    return rows
