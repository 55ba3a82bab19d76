"""Colorize one chunk: its render-size luma in, its predicted chroma (ab) out.

The same library call serves the Ray actor (a chunk) and tests (directly). Temporal models see
``temporal_context`` extra frames around every batch, so batch edges inside a chunk are seamless;
the flow-guided stabiliser runs later, over whole scenes (vidcolor.stages.scene_stabilize).
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from vidcolor.color import luma_to_lightness
from vidcolor.colorizer import Colorizer, FrameContext
from vidcolor.plan import Chunk
from vidcolor.state import DAMAGED_SOURCE, RunLayout, array_digest, pack_array, unpack_array, write_chunk_done
from vidcolor.stabilize import StabilizerParams
from vidcolor.store import ObjectStore


def quantize_ab(ab: np.ndarray) -> np.ndarray:
    """ab as int8: one ab unit is below what the 8-bit output chroma can show."""
    return np.clip(np.rint(ab), -127, 127).astype(np.int8)


def predict_chunk_ab(colorizer: Colorizer, luma: np.ndarray, full_range: bool, chunk: Chunk, batch_size: int) -> np.ndarray:
    """int8 ab of the chunk's extended range: one scene, so temporal context never crosses a cut."""
    lightness = luma_to_lightness(luma, full_range=full_range)
    out = np.empty(lightness.shape + (2,), dtype=np.int8)
    for s, ab in colorizer.predict_sequence(lightness, batch_size, FrameContext(chunk.index, chunk.ext_start)):
        out[s : s + ab.shape[0]] = quantize_ab(ab)
    return out


def load_chunk_source(store: ObjectStore, layout: RunLayout, chunk: Chunk) -> np.ndarray:
    """The chunk's source luma, checked against the plan's digest. A missing, unreadable or
    altered file raises an error starting with DAMAGED_SOURCE, so the run splits the chunk again."""
    key = layout.chunk(chunk.index, "source.npz")
    try:
        luma = unpack_array(store.get_bytes(key), "luma")
    except KeyError:
        raise RuntimeError(f"{DAMAGED_SOURCE}: {key} is missing") from None
    except Exception as e:  # noqa: BLE001 - a damaged zip fails in many ways (BadZipFile, zlib.error, ...)
        raise RuntimeError(f"{DAMAGED_SOURCE}: {key} cannot be read ({type(e).__name__})") from None
    if chunk.source_digest and array_digest(luma) != chunk.source_digest:
        raise RuntimeError(f"{DAMAGED_SOURCE}: {key} does not match its digest in the plan")
    return luma


def colorize_chunk(
    store: ObjectStore,
    layout: RunLayout,
    chunk: Chunk,
    colorizer: Colorizer,
    full_range: bool,
    batch_size: int = 8,
    luma: np.ndarray | None = None,
    worker: str = "",
    inference_lock=None,
    stabilizer: StabilizerParams | None = None,
    keyframes=None,
) -> dict:
    """Predict and store one chunk's chroma, then its done-marker. Idempotent. ``keyframes``:
    what steers the chunk (vidcolor.keyframes.ChunkKeyframes), or None."""
    t0 = time.time()
    if luma is None:
        luma = load_chunk_source(store, layout, chunk)
    if luma.shape[0] != chunk.ext_frames:
        raise RuntimeError(f"chunk {chunk.index}: source has {luma.shape[0]} frames, plan says {chunk.ext_frames}")
    # --- colour keyframes (vidcolor.keyframes, vidcolor.propagate) ---
    from vidcolor.propagate import palette_lead, propagate_keyframes

    lead = keyframes.palette if keyframes is not None else ""
    with inference_lock or contextlib.nullcontext(), palette_lead(colorizer, lead):
        ab = predict_chunk_ab(colorizer, luma, full_range, chunk, batch_size)
    t1 = time.time()
    # outside the lock: the other chunk's inference runs meanwhile. Unsteered chunks are stabilised
    # later, over their whole scene (vidcolor.stages.scene_stabilize); here only the fallback of
    # a chunk that keyframes steer is smoothed, before the keyframes' colours are carried over it
    if keyframes is not None and keyframes.propagates:
        ab = quantize_ab(propagate_keyframes(store, layout, chunk, luma, ab, keyframes, full_range, stabilizer))
    extra = {"keyframes": keyframes.digest} if keyframes is not None else {}
    write_chunk_done(
        store, layout, chunk.index, pack_array(ab=ab), chunk.ext_frames,
        {"model": colorizer.identity, "worker": worker, "infer_seconds": round(t1 - t0, 3),
         "stabilize_seconds": round(time.time() - t1, 3), **extra},
    )
    return {"chunk": chunk.index, "frames": chunk.ext_frames, "seconds": round(time.time() - t0, 3)}
