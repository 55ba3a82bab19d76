"""Keyframe propagation: a keyframe's chroma carried through the frames of its scene.

For each frame of a chunk, three candidates, trusted in this order:

1. Dense correspondence on luma: DIS optical flow of the render-size luma, chained frame to frame
   from the keyframe (into the chunk, across the frames in between when the keyframe lies outside
   it). The chain composes *coordinates* (where in the keyframe each pixel comes from), so the
   keyframe's chroma is resampled once, never blurred by repeated warps. Its confidence is 1 at the
   keyframe and is multiplied at every step by the flow's trust (forward-backward check, motion
   boundaries, warped-luma mismatch: vidcolor.stabilize.FlowTrust) and by ``step_trust``, so it
   decays with distance and drops to 0 where a check fails (occlusion, new objects).
2. Deep features: the MobileNetV2 encoder (the Coral port the generator's encoder starts from)
   on the frame's luma and on the keyframe frame's luma, matched at 1/8 resolution (cosine
   similarity, soft top-k); the matched cells' chroma, upsampled with the guided filter on the
   frame's lightness (chroma edges follow the film's luma), with a confidence from the similarity.
3. The GAN's prediction, led by the keyframe's palette (vidcolor.palette, set by the caller).

    out = w * flow + (1 - w) * (c_match * match + (1 - c_match) * gan),  w = min(1, c_flow / flow_full)

Several keyframes of one scene each carry their chroma; their flow candidates are averaged with
their confidences as weights, times ``nearest_bias`` ** distance (so each frame follows the
nearest one it can reach) and the feature
match searches all of them. At the keyframe's own frame the output is its chroma exactly.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from vidcolor.evaluation.temporal import FlowEstimator, _grid, visible_mask
from vidcolor.stabilize import StabilizerParams, stabilize_ab


@dataclass(frozen=True)
class PropagationParams:
    step_trust: float = 0.995  # confidence kept per frame of distance from the keyframe
    luma_sigma: float = 12.0  # mean luma mismatch (8-bit levels) through the correspondence that cuts trust to 0.6
    flow_scale: float = 0.5  # flow computed at this scale of the render size ...
    flow_min_side: int = 128  # ... but never below this short side (DIS needs detail to follow)
    flow_full: float = 0.5  # flow confidence from which the carried chroma is taken as it is
    nearest_bias: float = 0.9  # between keyframes, a frame's weight on each falls by this per frame of distance
    match_floor: float = 0.5  # cosine similarity at which a feature match starts to count
    match_full: float = 0.9  # ... and at which it counts fully
    match_weight: float = 0.8  # the most a feature match is trusted
    match_temperature: float = 0.03  # softmax temperature over the top-k similarities
    match_top_k: int = 8
    guided_eps: float = 0.01  # guided filter on L / 100, as the shipped model's upsampling


# --- the palette lead ------------------------------------------------------------------------------

@contextlib.contextmanager
def palette_lead(colorizer, palette_text: str, strength: float = 1.0):
    """The colorizer leans towards ``palette_text`` inside the block, and follows none after it. A
    model that cannot follow a palette (ValueError) predicts on its own."""
    if not palette_text:
        yield
        return
    from vidcolor.palette import Palette

    try:
        colorizer.set_palette(Palette.parse(palette_text), strength)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        colorizer.set_palette(None)


# --- 1. flow, chained from the keyframe and checked against it -----------------------------------------

class _Flow:
    """DIS flow between two render-size frames at a reduced scale, returned at full size, with the
    visibility of each pixel (forward-backward check, motion boundaries, inside the frame)."""

    def __init__(self, shape: tuple[int, int], params: PropagationParams):
        h, w = shape
        scale = min(1.0, max(params.flow_scale, params.flow_min_side / min(h, w)))
        self.full, self.small = (w, h), (max(8, round(w * scale)), max(8, round(h * scale)))
        self.flow = FlowEstimator(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def shrink(self, y: np.ndarray) -> np.ndarray:
        return y if self.small == self.full else cv2.resize(y, self.small, interpolation=cv2.INTER_AREA)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow from frame a into frame b, visible mask over a), both full size; a, b shrunk."""
        f = self.flow(a, b)
        vis = visible_mask(f, self.flow(b, a)).astype(np.float32)
        if self.small != self.full:
            f = cv2.resize(f, self.full, interpolation=cv2.INTER_LINEAR)
            f[..., 0] *= self.full[0] / self.small[0]
            f[..., 1] *= self.full[1] / self.small[1]
            vis = cv2.resize(vis, self.full, interpolation=cv2.INTER_LINEAR)
        return f, vis


def carry(keyframe_ab: np.ndarray, keyframe_luma: np.ndarray, lumas: Iterator[np.ndarray],
          params: PropagationParams) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ab, confidence) of each frame of ``lumas``: the keyframe's frame first (its own chroma,
    confidence 1), then the frames one step further away each (forward or backward in time).

    Each frame's correspondence to the keyframe is the chained one (the previous frame's, composed
    with the flow between the two) or, where that one fails, the direct flow from the frame to the
    keyframe (content that left the picture and came back); whichever makes the keyframe's luma match
    the frame's better. Confidence: ``step_trust`` ** distance x the luma match of the chosen
    correspondence x the chain's forward-backward checks (halved at each failed one)."""
    kf = keyframe_ab.astype(np.float32)
    kl = keyframe_luma.astype(np.float32)
    h, w = kf.shape[:2]
    flow = _Flow((h, w), params)
    gx, gy = _grid(h, w)
    k_small = flow.shrink(keyframe_luma)
    mx, my, chain = gx.copy(), gy.copy(), np.ones((h, w), np.float32)
    prev = None
    for step, y in enumerate(lumas):
        small = flow.shrink(y)
        if prev is None:
            yield kf, np.ones((h, w), np.float32)
            prev = small
            continue
        f, vis = flow(small, prev)  # this pixel came from x + f of the previous frame
        sx, sy = gx + f[..., 0], gy + f[..., 1]
        mx = cv2.remap(mx, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        my = cv2.remap(my, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        chain = cv2.remap(chain, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        chain *= 0.5 + 0.5 * vis
        yf = y.astype(np.float32)
        err_chain = _mismatch(kl, mx, my, yf)
        fd, vis_d = flow(small, k_small)  # straight to the keyframe
        dx, dy = gx + fd[..., 0], gy + fd[..., 1]
        err_direct = _mismatch(kl, dx, dy, yf)
        direct = (vis_d > 0.5) & ((err_direct < err_chain) | (chain < 0.25))
        mx, my = np.where(direct, dx, mx), np.where(direct, dy, my)
        chain = np.where(direct, 1.0, chain).astype(np.float32)
        err = np.where(direct, err_direct, err_chain)
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        conf = (params.step_trust ** step) * chain * np.exp(err * err * (-0.5 / params.luma_sigma ** 2)) * inside
        yield cv2.remap(kf, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), conf.astype(np.float32)
        prev = small


def _mismatch(kl: np.ndarray, mx: np.ndarray, my: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Local mean absolute difference between the keyframe's luma brought through the map and the
    frame's own (5x5 box: single noisy pixels do not count)."""
    d = np.abs(cv2.remap(kl, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) - y)
    return cv2.blur(d, (5, 5))


# --- 2. deep features ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _encoder():
    from vidcolor.models.mobilenet_v2 import load_mobilenet_v2

    return load_mobilenet_v2()


def luma_features(luma: np.ndarray, batch: int = 16) -> np.ndarray:
    """(N, h/8, w/8, C) float32 unit-length features of (N, H, W) uint8 luma: the encoder's 1/8 and
    1/16 maps (the latter upsampled), each normalised, then joined and normalised."""
    import torch
    import torch.nn.functional as F

    enc = _encoder()
    out = []
    with torch.inference_mode():
        for s in range(0, luma.shape[0], batch):
            x = torch.from_numpy(luma[s : s + batch].astype(np.float32) / 127.5 - 1.0)[:, None].expand(-1, 3, -1, -1)
            f2, f4, f8, f16 = enc.features(x.contiguous(), upto=12)
            f16 = F.interpolate(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False)
            f = torch.cat([F.normalize(f8, dim=1), F.normalize(f16, dim=1)], dim=1)
            out.append(F.normalize(f, dim=1).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def cell_ab(ab: np.ndarray, cells_hw: tuple[int, int]) -> np.ndarray:
    """ab (H, W, 2) averaged over the feature cells (h, w, 2)."""
    h, w = cells_hw
    return cv2.resize(ab.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)


def guided_upsample_ab(lightness: np.ndarray, ab_low: np.ndarray, eps: float) -> np.ndarray:
    """ab (h, w, 2) -> (H, W, 2) with the model's fast guided filter on L / 100 (H, W)."""
    import torch

    from vidcolor.models.generator import guided_upsample

    with torch.inference_mode():
        g = torch.from_numpy(np.ascontiguousarray(lightness, dtype=np.float32) / 100)[None, None]
        s = torch.from_numpy(np.ascontiguousarray(ab_low.transpose(2, 0, 1), dtype=np.float32))[None]
        return guided_upsample(g, s, eps)[0].permute(1, 2, 0).numpy()


def match_features(feats: np.ndarray, key_feats: np.ndarray, key_ab: np.ndarray,
                   params: PropagationParams) -> tuple[np.ndarray, np.ndarray]:
    """For each cell of one frame's features (h, w, C): the chroma of the keyframe cells that look
    like it (soft top-k over the ``key_feats`` (M, C) / ``key_ab`` (M, 2)), and a confidence from the
    best similarity. Returns ((h, w, 2), (h, w))."""
    h, w, c = feats.shape
    sim = feats.reshape(-1, c) @ key_feats.T  # (hw, M)
    k = min(params.match_top_k, sim.shape[1])
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(sim, top, axis=1)
    p = np.exp((s - s.max(1, keepdims=True)) / params.match_temperature)
    p /= p.sum(1, keepdims=True)
    ab = (p[..., None] * key_ab[top]).sum(1)
    conf = np.clip((s.max(1) - params.match_floor) / (params.match_full - params.match_floor), 0, 1) * params.match_weight
    return ab.reshape(h, w, 2).astype(np.float32), conf.reshape(h, w).astype(np.float32)


# --- the chunk -----------------------------------------------------------------------------------------

def propagate_chunk(
    ext_start: int,
    ext_end: int,
    luma_at: Callable[[int], np.ndarray],
    gan_ab: np.ndarray,
    keyframes: dict[int, tuple[np.ndarray, np.ndarray]],
    lightness: np.ndarray,
    params: PropagationParams = PropagationParams(),
    stabilizer: StabilizerParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The output chroma of frames [ext_start, ext_end) of one scene, and the flow confidence.

    ``luma_at(t)``: render-size luma (H, W) uint8 of any frame t of the scene between a keyframe
    and the chunk; ``gan_ab`` (N, H, W, 2): the GAN's prediction for the chunk (led by the
    keyframe's palette); ``keyframes``: {frame: (ab (H, W, 2), the film's luma of that frame)} of
    the scene; ``lightness`` (N, H, W): the chunk's L (the guide of the chroma edges);
    ``stabilizer``: smooths the fallback (feature match and GAN) along the motion."""
    n = ext_end - ext_start
    if gan_ab.shape[0] != n or lightness.shape[0] != n:
        raise ValueError(f"chunk of {n} frames, gan_ab has {gan_ab.shape[0]}, lightness {lightness.shape[0]}")
    h, w = gan_ab.shape[1:3]
    num = np.zeros((n, h, w, 2), np.float32)
    den = np.zeros((n, h, w), np.float32)
    c_flow = np.zeros((n, h, w), np.float32)

    def add(t: int, k: int, ab: np.ndarray, conf: np.ndarray) -> None:
        i = t - ext_start
        weight = conf * params.nearest_bias ** abs(t - k)  # several keyframes: the nearest one leads
        num[i] += weight[..., None] * ab
        den[i] += weight
        np.maximum(c_flow[i], conf, out=c_flow[i])

    for k, (kab, kluma) in sorted(keyframes.items()):
        if k < ext_end:  # forward from the keyframe to the chunk's end
            frames = range(k, ext_end)
            lumas = (kluma if t == k else luma_at(t) for t in frames)
            for t, (ab, conf) in zip(frames, carry(kab, kluma, lumas, params)):
                if t >= ext_start:
                    add(t, k, ab, conf)
        if k > ext_start:  # backward from the keyframe to the chunk's start
            frames = range(k, ext_start - 1, -1)
            lumas = (kluma if t == k else luma_at(t) for t in frames)
            for t, (ab, conf) in zip(frames, carry(kab, kluma, lumas, params)):
                if t < ext_end and not (t == k and k < ext_end):  # the keyframe's frame counted once
                    add(t, k, ab, conf)
    flow_ab = num / np.maximum(den, 1e-6)[..., None]

    # 2. the feature match against every keyframe of the scene
    chunk_luma = np.stack([luma_at(t) for t in range(ext_start, ext_end)])
    feats = luma_features(chunk_luma)
    cells = feats.shape[1:3]
    key_frames = sorted(keyframes)
    key_feats = luma_features(np.stack([keyframes[k][1] for k in key_frames]))
    key_ab = np.stack([cell_ab(keyframes[k][0], cells) for k in key_frames])
    key_feats, key_ab = key_feats.reshape(-1, key_feats.shape[-1]), key_ab.reshape(-1, 2)
    fallback = np.empty((n, h, w, 2), np.float32)
    for i in range(n):
        ab_low, conf_low = match_features(feats[i], key_feats, key_ab, params)
        ab_m = guided_upsample_ab(lightness[i], ab_low, params.guided_eps)
        c_m = cv2.resize(conf_low, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        fallback[i] = c_m * ab_m + (1 - c_m) * gan_ab[i].astype(np.float32)
    if stabilizer is not None:
        fallback = stabilize_ab(chunk_luma, fallback, stabilizer)
    c = np.clip(c_flow / params.flow_full, 0, 1)[..., None]
    return c * flow_ab + (1 - c) * fallback, c_flow


class SceneLuma:
    """Render-size luma of any frame of a scene: the chunk's own, else from the scene's other chunk
    sources (one held at a time: propagation walks frames in order)."""

    def __init__(self, store, layout, chunk, luma: np.ndarray, sources):
        self.store, self.layout = store, layout
        self.own = (chunk.ext_start, chunk.ext_end, luma)
        self.sources = sources
        self.held: tuple[int, int, np.ndarray] | None = None

    def __call__(self, t: int) -> np.ndarray:
        from vidcolor.state import unpack_array

        for rng in (self.own, self.held):
            if rng is not None and rng[0] <= t < rng[1]:
                return rng[2][t - rng[0]]
        for s in self.sources:
            if s.start <= t < s.end:
                luma = unpack_array(self.store.get_bytes(self.layout.chunk(s.chunk, "source.npz")), "luma")
                if luma.shape[0] != s.end - s.start:
                    raise RuntimeError(f"chunk {s.chunk}: source has {luma.shape[0]} frames, plan says {s.end - s.start}")
                self.held = (s.start, s.end, luma)
                return luma[t - s.start]
        raise RuntimeError(f"frame {t}: no chunk source of the scene holds it")


def propagate_keyframes(store, layout, chunk, luma: np.ndarray, gan_ab: np.ndarray, steer, full_range: bool,
                        stabilizer: StabilizerParams | None = None) -> np.ndarray:
    """The chunk's output ab (float32) with the keyframes ``steer`` (vidcolor.keyframes.ChunkKeyframes)
    propagated into it, reading them and the luma between from the run state."""
    from vidcolor.color import luma_to_lightness
    from vidcolor.keyframes import load_stored_keyframe

    keyframes = {k: load_stored_keyframe(store, layout, k, steer.checksums.get(k, "")) for k in steer.frames}
    luma_at = SceneLuma(store, layout, chunk, luma, steer.sources)
    ab, _ = propagate_chunk(chunk.ext_start, chunk.ext_end, luma_at, gan_ab, keyframes,
                            luma_to_lightness(luma, full_range), stabilizer=stabilizer)
    return ab
