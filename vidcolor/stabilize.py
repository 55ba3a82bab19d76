"""Flow-guided chroma stabiliser: removes frame-to-frame flicker of the predicted ab.

A frame-by-frame colourizer decides each frame's colours afresh, so a wall that is beige in one
frame may be pink in the next. The film's own luma says where every pixel moves: optical flow (OpenCV
DIS) between neighbouring frames' render-size luma carries chroma from frame to frame, and each
frame's chroma becomes a weighted mean of its neighbours' along the motion, with weight
w(t, t+k) = product of the per-step trusts between them (about ``strength`` ** |k|):

    forward  S[t] = ab[t] + w warp(S[t-1]),   N[t] = 1 + w warp(N[t-1])
    backward the same from the end;           out[t] = (S_f + S_b - ab[t]) / (N_f + N_b - 1)

Normalised sums (not a plain recursive blend) keep the first frame of a chunk from dominating, and
the two directions make the mean centred, without lag. The per-step trust is ``strength`` where the
flow is trusted (forward-backward consistent, not on a motion boundary, inside the frame, and the
warped luma matches the frame's own) and falls to 0 where it is not (occlusions, new objects):
there the model's own prediction stands.

It runs on ONE scene's consecutive frames, so colours never leak across a cut: the pipeline runs it
over each whole scene after the chunks' overlaps are blended (vidcolor.stages.scene_stabilize), so a
chunk join inside a scene is smoothed like any other frame. Memory: the forward pass is kept as float16, one frame of flow at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vidcolor.evaluation.temporal import FlowEstimator, visible_mask, warp


@dataclass(frozen=True)
class StabilizerParams:
    # Chosen on vid4_walk and the first 96 frames of bikes.mp4 (docs/temporal.md): from 0.8 to 0.97
    # the CDC kept falling and PSNR against the colour original kept rising; 20 levels of luma
    # mismatch gave 0.1-0.2 dB more PSNR than 10.
    strength: float = 0.97  # weight of the flow-carried chroma where the flow is trusted
    luma_sigma: float = 20.0  # 8-bit luma levels: a warped-luma mismatch of this size cuts trust to 0.6
    flow_scale: float = 0.5  # flow and trust are computed at this scale of the render size (chroma is smooth)
    preset: int = cv2.DISOPTICAL_FLOW_PRESET_FAST


class FlowTrust:
    """Flow between two frames and how far to trust it, at ``flow_scale``, returned at full size."""

    def __init__(self, shape: tuple[int, int], params: StabilizerParams):
        self.params = params
        self.flow = FlowEstimator(params.preset)
        h, w = shape
        self.full = (w, h)
        self.small = (max(8, round(w * params.flow_scale)), max(8, round(h * params.flow_scale)))

    def shrink(self, y: np.ndarray) -> np.ndarray:
        return y if self.small == self.full else cv2.resize(y, self.small, interpolation=cv2.INTER_AREA)

    def flows(self, y_to: np.ndarray, y_from: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow from y_to's frame into y_from's, and back), at ``flow_scale``: what a pass in the
        other direction needs too, swapped, so the backward pass computes no flow of its own."""
        return self.flow(y_to, y_from), self.flow(y_from, y_to)

    def __call__(self, y_to: np.ndarray, y_from: np.ndarray,
                 flows: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(flow from y_to's frame into y_from's, weight map over y_to's frame), both full size;
        y_to / y_from already shrunk; ``flows``: this pair's ``flows()`` when already computed."""
        p = self.params
        f, back = flows if flows is not None else self.flows(y_to, y_from)
        f, back = f.astype(np.float32, copy=False), back.astype(np.float32, copy=False)
        vis = visible_mask(f, back)
        mismatch = warp(y_from.astype(np.float32), f) - y_to.astype(np.float32)
        w = (p.strength * vis) * np.exp(mismatch * mismatch * (-0.5 / p.luma_sigma ** 2))
        if self.small != self.full:
            f = cv2.resize(f, self.full, interpolation=cv2.INTER_LINEAR)
            f[..., 0] *= self.full[0] / self.small[0]
            f[..., 1] *= self.full[1] / self.small[1]
            w = cv2.resize(w.astype(np.float32), self.full, interpolation=cv2.INTER_LINEAR)
        return f, w.astype(np.float32)


class RecursivePass:
    """One direction of the recursion, its state carried from call to call: a scene's frames may
    come a chunk at a time (vidcolor.stages.scene_stabilize) and give the same sums as in one go."""

    def __init__(self, trust: FlowTrust):
        self.trust = trust
        self.s_acc = self.n_acc = self.y_prev = None

    def step(self, y_small: np.ndarray, ab: np.ndarray,
             flows: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(sum, weight) at this frame: its own ab plus what the flow carries from the previous one.
        ``flows``: (this frame -> previous, previous -> this frame) when already computed."""
        ab = ab.astype(np.float32)
        if self.s_acc is None:
            self.s_acc, self.n_acc = ab, np.ones(ab.shape[:2], np.float32)
        else:
            f, w = self.trust(y_small, self.y_prev, flows)
            self.s_acc = ab + w[..., None] * warp(self.s_acc, f)
            self.n_acc = 1.0 + w * warp(self.n_acc, f)
        self.y_prev = y_small
        return self.s_acc, self.n_acc


def combine(fwd_mean: np.ndarray, fwd_weight: np.ndarray, s_bwd: np.ndarray, n_bwd: np.ndarray,
            ab: np.ndarray) -> np.ndarray:
    """A frame's stabilised ab from its forward (mean, weight) and backward (sum, weight): both hold
    the frame itself once, so it is counted once."""
    n_fwd = fwd_weight.astype(np.float32)
    s_fwd = fwd_mean.astype(np.float32) * n_fwd[..., None]
    return (s_fwd + s_bwd - ab.astype(np.float32)) / (n_fwd + n_bwd - 1.0)[..., None]


def stabilize_ab(luma: np.ndarray, ab: np.ndarray, params: StabilizerParams = StabilizerParams()) -> np.ndarray:
    """``luma`` (N, H, W) uint8 and ``ab`` (N, H, W, 2) of consecutive frames of one scene ->
    stabilised ab, float32 (N, H, W, 2)."""
    n = ab.shape[0]
    if luma.shape[0] != n:
        raise ValueError(f"luma has {luma.shape[0]} frames, ab has {n}")
    if n < 2 or params.strength <= 0:
        return ab.astype(np.float32)
    trust = FlowTrust(luma.shape[1:], params)
    small = [trust.shrink(y) for y in luma]
    # the forward pass, kept for the backward one as float16 mean and weight (the sum itself would
    # lose whole ab units in float16)
    fwd_mean = np.empty(ab.shape, dtype=np.float16)
    fwd_weight = np.empty(ab.shape[:3], dtype=np.float16)
    forward = RecursivePass(trust)
    pairs = [None] + [trust.flows(small[t], small[t - 1]) for t in range(1, n)]  # t -> t-1 and back
    for t in range(n):
        s_acc, n_acc = forward.step(small[t], ab[t], pairs[t])
        fwd_mean[t], fwd_weight[t] = s_acc / n_acc[..., None], n_acc
    out = np.empty(ab.shape, dtype=np.float32)
    backward = RecursivePass(trust)
    for t in range(n - 1, -1, -1):
        s_acc, n_acc = backward.step(small[t], ab[t], pairs[t + 1][::-1] if t < n - 1 else None)
        out[t] = combine(fwd_mean[t], fwd_weight[t], s_acc, n_acc, ab[t])
    return out
