"""Stitch one chunk: blend its chroma with its neighbours' in the overlaps, upsample it, join it
with the ORIGINAL full-resolution luma of the source, encode a segment.

Runs per chunk, in parallel; each reads only its own core frames of the source (frame-accurate
seek by the pts recorded at split time).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

import cv2
import numpy as np

from vidcolor.color import chroma_from_lab, luma_to_lightness
from vidcolor.failpoints import failpoint
from vidcolor.media.encode import SegmentEncoder
from vidcolor.media.luma import iter_luma
from vidcolor.plan import Chunk, Plan, frame_weights
from vidcolor.settings import EncodeSettings
from vidcolor.state import RunLayout, load_frame_table, unpack_array, write_segment_done
from vidcolor.store import ObjectStore


def blended_chroma(store: ObjectStore, layout: RunLayout, chunks: list[Chunk], overlap: int, index: int,
                   ramp: str = "linear", dtype=np.float32) -> np.ndarray:
    """(core_frames, h, w, 2) ab of chunk ``index`` after overlap blending, as ``dtype``."""
    me = chunks[index]
    weights = frame_weights(chunks, index, overlap, ramp)
    out = None
    for c_index, w in weights.items():
        c = chunks[c_index]
        ab = unpack_array(store.get_bytes(layout.chunk(c_index, "chroma.npz")), "ab")
        if ab.shape[0] != c.ext_frames:
            raise RuntimeError(f"chunk {c_index}: chroma has {ab.shape[0]} frames, plan says {c.ext_frames}")
        lo = me.core_start - c.ext_start
        w_arr = np.asarray(w, dtype=np.float32)
        if not (w_arr > 0).any():  # e.g. a step ramp: this neighbour reaches no core frame of ours
            continue
        if out is None:
            out = np.zeros((me.core_frames,) + ab.shape[1:], dtype=dtype)
        # frames this contributor alone covers are copied; only the overlap's frames are weighted,
        # one at a time (no chunk-sized temporaries: a 10-s chunk's chroma is 170 MB in float32)
        alone = np.flatnonzero(w_arr == 1.0)
        for a, b in _runs(alone):
            np.copyto(out[a:b], ab[lo + a : lo + b], casting="unsafe")
        for k in np.flatnonzero((w_arr > 0) & (w_arr < 1.0)):
            out[k] += ab[lo + k] * w_arr[k]
    return out


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Sorted frame indices -> [start, end) runs of consecutive ones."""
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) > 1) + 1
    return [(int(r[0]), int(r[-1]) + 1) for r in np.split(indices, breaks)]


def stitch_chunk(
    store: ObjectStore,
    layout: RunLayout,
    plan: Plan,
    index: int,
    source_path: str,
    encode: EncodeSettings,
    encode_key: str,
    on_frames: Callable[[int], None] | None = None,
    keyframes: str = "",
    stabilized: bool = False,
) -> dict:
    """``keyframes``: digest of the keyframes steering the chroma (recorded in the segment marker).
    ``stabilized``: take the chroma its scene's stabiliser pass wrote (vidcolor.stages.scene_stabilize)
    instead of blending the overlaps here."""
    t0 = time.time()
    info = plan.video
    me = plan.chunks[index]
    if stabilized:
        ab = unpack_array(store.get_bytes(layout.chunk(index, "stable.npz")), "ab")  # int8
        if ab.shape[0] != me.core_frames:
            raise RuntimeError(f"chunk {index}: stabilised chroma has {ab.shape[0]} frames, plan says {me.core_frames}")
    else:
        ab = blended_chroma(store, layout, list(plan.chunks), plan.overlap, index, dtype=np.float16)
    table = load_frame_table(store, layout).slice(me.core_start, me.core_frames).to_pydict()
    pts_list, dur_list = table["pts"], table["duration"]
    cw, ch = info.width // 2, info.height // 2

    fd, tmp = tempfile.mkstemp(suffix=".nut", prefix=f"{layout.temp_prefix('segment')}{index:05d}-")
    os.close(fd)
    encoder = SegmentEncoder(tmp, info, encode)
    written = 0
    try:
        frames = iter_luma(source_path, start_pts=pts_list[0], first_index=me.core_start, bits=info.bit_depth)
        for k, frame in zip(range(me.core_frames), frames):
            if frame.pts != pts_list[k]:
                raise RuntimeError(
                    f"chunk {index}: source frame {me.core_start + k} has pts {frame.pts}, plan says {pts_list[k]}"
                )
            # the chunk's chroma stays int8 / float16: one frame at a time in float32
            ab_half = cv2.resize(ab[k].astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR)
            y_half = cv2.resize(frame.y, (cw, ch), interpolation=cv2.INTER_AREA)
            cb, cr = chroma_from_lab(luma_to_lightness(y_half, info.full_range, info.bit_depth), ab_half, info.matrix,
                                     info.full_range, info.bit_depth)
            encoder.write(frame.y, cb, cr, frame.pts, dur_list[k])
            written += 1
            if on_frames and written % 8 == 0:
                on_frames(8)
        frames.close()
        encoder.close()
        if written != me.core_frames:
            raise RuntimeError(f"chunk {index}: decoded {written} of {me.core_frames} source frames")
        if on_frames:
            on_frames(written % 8)
        write_segment_done(store, layout, encode_key, index, tmp, written, time.time() - t0, keyframes)
        failpoint("stitch")
    except BaseException:
        encoder.abort()
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"chunk": index, "frames": written, "seconds": round(time.time() - t0, 3)}
