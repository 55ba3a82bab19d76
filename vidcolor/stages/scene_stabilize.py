"""Stabilise a whole scene's chroma once its chunks are colorized and their overlaps blended.

The flow-guided stabiliser (vidcolor.stabilize) remembers about 30 frames; run on each chunk
alone, two chunks that meet inside a scene would be smoothed with different memories and the join
would show as a step. Run here over the scene's blended chroma, a chunk at a time with the
recursion's state carried across, a join is smoothed like every other frame. The forward pass is
kept in memory (float16) up to MEMORY_BUDGET and in temporary files beyond, so memory stays
bounded however long the scene. The forward direction can follow the actors chunk by chunk
(ScenePass.forward); only the backward one waits for the scene's last chunk.

Writes ``chunks/<i>/stable.npz`` (int8 ab of chunk i's core frames at the render size) for the
stitch. It is rewritten by every invocation that stitches the scene, never trusted from before.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidcolor.plan import Plan
from vidcolor.stabilize import FlowTrust, RecursivePass, StabilizerParams, combine
from vidcolor.stages.colorize import load_chunk_source, quantize_ab
from vidcolor.stages.stitch import blended_chroma
from vidcolor.state import RunLayout, load_npy_mapped, pack_array
from vidcolor.store import ObjectStore

STABLE = "stable.npz"
# the forward pass's arrays (about 1.1 MB a frame at 352x256) are kept in memory up to this much
# per pass, so a typical scene of a few seconds never touches the disk; a longer one spills the rest
# to temporary files (writing them cost about a tenth of the driver's CPU on 30-s scenes)
MEMORY_BUDGET = 512 * 2**20


class ScenePass:
    """One scene's pass, fed a chunk at a time so that it can follow the actors: ``forward(i)``
    for each chunk of the scene in order, as soon as its blended chroma is final (it and its
    neighbours colorized); ``finish()`` once the last chunk has gone forward runs the backward
    pass, which writes the chunks' ``stable.npz`` last chunk first and calls ``on_stable(i)`` after
    each, so their stitches can start while it goes on. Not thread-safe: one caller at a time."""

    KEPT = ("ab", "small", "mean", "weight", "to_prev", "from_prev")

    def __init__(self, store: ObjectStore, layout: RunLayout, plan: Plan, indices: list[int],
                 params: StabilizerParams):
        self.store, self.layout, self.params = store, layout, params
        self.chunks, self.overlap = list(plan.chunks), plan.overlap
        self.indices = list(indices)
        self.gone_forward: list[int] = []
        self._tmp = tempfile.TemporaryDirectory(prefix=layout.temp_prefix("stabilize"))
        self.work = Path(self._tmp.name)
        self.trust = self.forward_pass = None
        self.frames, self.seconds = 0, 0.0
        self.in_memory: dict[int, dict] = {}  # chunk -> its forward arrays, within MEMORY_BUDGET
        self.held = 0

    @property
    def next_forward(self) -> int | None:
        """The chunk the forward pass takes next (None once every chunk has gone forward)."""
        left = self.indices[len(self.gone_forward):]
        return left[0] if left else None

    def forward(self, i: int) -> None:
        if i != self.next_forward:
            raise ValueError(f"scene pass: chunk {i} out of order (next is {self.next_forward})")
        t0 = time.time()
        ab = blended_chroma(self.store, self.layout, self.chunks, self.overlap, i, dtype=np.float16)  # as kept below
        c = self.chunks[i]
        luma = load_chunk_source(self.store, self.layout, c)[c.core_start - c.ext_start:][: c.core_frames]
        if self.trust is None:
            self.trust = FlowTrust(luma.shape[1:], self.params)
            self.forward_pass = RecursivePass(self.trust)
        trust, forward = self.trust, self.forward_pass
        small = np.stack([trust.shrink(y) for y in luma])
        fwd_mean = np.empty(ab.shape, np.float16)
        fwd_weight = np.empty(ab.shape[:3], np.float16)
        # each frame's flows into the frame before it and back (the first frame of the scene has none);
        # the backward pass takes them swapped
        to_prev = np.zeros((len(ab),) + small.shape[1:] + (2,), np.float16)
        from_prev = np.zeros_like(to_prev)
        for t in range(len(ab)):
            flows = None if forward.y_prev is None else trust.flows(small[t], forward.y_prev)
            if flows is not None:
                to_prev[t], from_prev[t] = flows
            s_acc, n_acc = forward.step(small[t], ab[t], flows)
            fwd_mean[t], fwd_weight[t] = s_acc / n_acc[..., None], n_acc
        kept = dict(zip(self.KEPT, (ab, small, fwd_mean, fwd_weight, to_prev, from_prev)))
        size = sum(a.nbytes for a in kept.values())
        if self.held + size <= MEMORY_BUDGET:
            self.in_memory[i] = kept
            self.held += size
        else:
            for name, array in kept.items():  # plain .npy files: no zip, no checksum; read back mapped
                np.save(self.work / f"{i}-{name}.npy", array)
        self.gone_forward.append(i)
        self.frames += len(ab)
        self.seconds += time.time() - t0

    def finish(self, on_stable: Callable[[int], None] | None = None) -> dict:
        """The backward pass; returns timing and frame counts. Closes the pass."""
        if self.next_forward is not None:
            raise ValueError(f"scene pass: chunk {self.next_forward} has not gone forward")
        t0 = time.time()
        try:
            backward = RecursivePass(self.trust)
            later = None  # the flows between the next chunk's first frame and this chunk's last one
            for i in reversed(self.indices):
                kept = self.in_memory.pop(i, None)
                ab, small, fwd_mean, fwd_weight, to_prev, from_prev = (
                    kept[name] if kept is not None else load_npy_mapped(self.work / f"{i}-{name}.npy")
                    for name in self.KEPT)
                del kept
                out = np.empty(ab.shape, np.int8)
                for t in range(len(ab) - 1, -1, -1):
                    flows = later if t == len(ab) - 1 else (from_prev[t + 1], to_prev[t + 1])
                    s_acc, n_acc = backward.step(small[t], ab[t], flows)
                    out[t] = quantize_ab(combine(fwd_mean[t], fwd_weight[t], s_acc, n_acc, ab[t]))
                later = (np.array(from_prev[0]), np.array(to_prev[0]))
                del ab, small, fwd_mean, fwd_weight, to_prev, from_prev  # the mapped files
                self.store.put_bytes(self.layout.chunk(i, STABLE), pack_array(ab=out))
                if on_stable:
                    on_stable(i)
        finally:
            self.close()
        self.seconds += time.time() - t0
        return {"chunks": self.indices, "frames": self.frames, "seconds": round(self.seconds, 3)}

    def close(self) -> None:
        self.in_memory.clear()
        self._tmp.cleanup()


def stabilize_scene(store: ObjectStore, layout: RunLayout, plan: Plan, indices: list[int],
                    params: StabilizerParams, on_stable: Callable[[int], None] | None = None) -> dict:
    """``indices``: the chunks of one scene, in order, all colorized. Returns timing and frame counts."""
    scene = ScenePass(store, layout, plan, indices, params)
    try:
        for i in indices:
            scene.forward(i)
    except BaseException:
        scene.close()
        raise
    return scene.finish(on_stable)
