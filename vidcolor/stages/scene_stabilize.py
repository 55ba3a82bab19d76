"""Stabilise a whole scene's chroma once its chunks are colorized and their overlaps blended.

The flow-guided stabiliser (vidcolor.stabilize) remembers about 30 frames; run on each chunk
alone, two chunks that meet inside a scene would be smoothed with different memories and the join
would show as a step. Run here over the scene's blended chroma, a chunk at a time with the
recursion's state carried across, a join is smoothed like every other frame. The forward pass is
kept in temporary files (float16), so memory holds one chunk, however long the scene.

Writes ``chunks/<i>/stable.npz`` (int8 ab of chunk i's core frames at the render size) for the
stitch. It is rewritten by every invocation that stitches the scene, never trusted from before.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from vidcolor.plan import Plan
from vidcolor.stabilize import FlowTrust, RecursivePass, StabilizerParams, combine
from vidcolor.stages.colorize import load_chunk_source, quantize_ab
from vidcolor.stages.stitch import blended_chroma
from vidcolor.state import RunLayout, pack_array
from vidcolor.store import ObjectStore

STABLE = "stable.npz"


def stabilize_scene(store: ObjectStore, layout: RunLayout, plan: Plan, indices: list[int],
                    params: StabilizerParams) -> dict:
    """``indices``: the chunks of one scene, in order. Returns timing and frame counts."""
    t0 = time.time()
    chunks = list(plan.chunks)
    frames = 0
    with tempfile.TemporaryDirectory(prefix=layout.temp_prefix("stabilize")) as tmp:
        work = Path(tmp)
        trust = forward = None
        for i in indices:
            ab = blended_chroma(store, layout, chunks, plan.overlap, i, dtype=np.float16)  # as kept below
            c = chunks[i]
            luma = load_chunk_source(store, layout, c)[c.core_start - c.ext_start:][: c.core_frames]
            if trust is None:
                trust = FlowTrust(luma.shape[1:], params)
                forward = RecursivePass(trust)
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
            kept = {"ab": ab, "small": small, "mean": fwd_mean, "weight": fwd_weight,
                    "to_prev": to_prev, "from_prev": from_prev}
            for name, array in kept.items():  # plain .npy files: no zip, no checksum; read back mapped
                np.save(work / f"{i}-{name}.npy", array)
            frames += len(ab)
            del kept, ab, small, fwd_mean, fwd_weight, to_prev, from_prev
        backward = RecursivePass(trust)
        later = None  # the flows between the next chunk's first frame and this chunk's last one
        for i in reversed(indices):
            ab, small, fwd_mean, fwd_weight, to_prev, from_prev = (
                np.load(work / f"{i}-{name}.npy", mmap_mode="r")
                for name in ("ab", "small", "mean", "weight", "to_prev", "from_prev"))
            out = np.empty(ab.shape, np.int8)
            for t in range(len(ab) - 1, -1, -1):
                flows = later if t == len(ab) - 1 else (from_prev[t + 1], to_prev[t + 1])
                s_acc, n_acc = backward.step(small[t], ab[t], flows)
                out[t] = quantize_ab(combine(fwd_mean[t], fwd_weight[t], s_acc, n_acc, ab[t]))
            later = (from_prev[0], to_prev[0])
            store.put_bytes(layout.chunk(i, STABLE), pack_array(ab=out))
    return {"chunks": list(indices), "frames": frames, "seconds": round(time.time() - t0, 3)}
