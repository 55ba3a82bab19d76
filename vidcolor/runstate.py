"""Run identity and the run's files on the object store (the source of truth for resume).

    runs/<run_id>/plan.json                 probe, cuts, chunk table (written before any colorize work)
    runs/<run_id>/frames.parquet            every frame's pts and duration
    runs/<run_id>/chunks/<i>/source.npz     render-size luma of the chunk's extended range
    runs/<run_id>/chunks/<i>/chroma.npz     predicted ab (int8) of the extended range
    runs/<run_id>/chunks/<i>/done.json      marker, written last: frame count + sha256 of chroma.npz
    runs/<run_id>/segments/<encode>/<i>.nut encoded core frames, and <i>.json marker
    runs/<run_id>/run.json                  status, invocations, what each colorized, quarantine

Everything is readable JSON or standard files, so a person can inspect (or delete) any part.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidcolor.store import ObjectStore

_SAMPLE_BLOCK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint_file(path: str | os.PathLike, full_below: int = 256 << 20) -> str:
    """Content fingerprint of the input: the whole file below 256 MiB; above, its size plus 64
    evenly spaced 1 MiB blocks (first and last included), so a film of 50 GB is fingerprinted in
    well under a second yet any re-encode or truncation changes it."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(f"size={size};".encode())
    with open(p, "rb") as f:
        if size <= full_below:
            for block in iter(lambda: f.read(8 << 20), b""):
                h.update(block)
        else:
            n = 64
            for k in range(n):
                f.seek(k * (size - _SAMPLE_BLOCK) // (n - 1))
                h.update(f.read(_SAMPLE_BLOCK))
    return h.hexdigest()


def make_run_id(input_fingerprint: str, chroma_key: dict) -> str:
    blob = json.dumps({"input": input_fingerprint, "chroma": chroma_key}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunLayout:
    """Key names of one run under a store root."""

    run_id: str

    @property
    def root(self) -> str:
        return f"runs/{self.run_id}"

    @property
    def plan(self) -> str:
        return f"{self.root}/plan.json"

    @property
    def frames(self) -> str:
        return f"{self.root}/frames.parquet"

    @property
    def run_json(self) -> str:
        return f"{self.root}/run.json"

    def chunk(self, i: int, name: str) -> str:
        return f"{self.root}/chunks/{i:05d}/{name}"

    def segment(self, encode_key: str, i: int, ext: str = "nut") -> str:
        return f"{self.root}/segments/{encode_key}/{i:05d}.{ext}"


# --- arrays on the store -------------------------------------------------------------------

def pack_array(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def unpack_array(data: bytes, name: str) -> np.ndarray:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return z[name]


# --- chunk markers --------------------------------------------------------------------------

def write_chunk_done(store: ObjectStore, layout: RunLayout, index: int, chroma_bytes: bytes, frames: int, extra: dict) -> None:
    """Chroma first, marker last: a marker never points at a missing or partial chroma file."""
    store.put_bytes(layout.chunk(index, "chroma.npz"), chroma_bytes)
    marker = {"chunk": index, "frames": frames, "sha256": sha256_bytes(chroma_bytes), "written_at": time.time(), **extra}
    store.put_json(layout.chunk(index, "done.json"), marker)


def chunk_is_done(store: ObjectStore, layout: RunLayout, index: int, expected_frames: int) -> bool:
    """Trusted only when the marker's checksum matches the chroma file it names."""
    try:
        marker = store.get_json(layout.chunk(index, "done.json"))
        data = store.get_bytes(layout.chunk(index, "chroma.npz"))
    except (KeyError, ValueError):
        return False
    return marker.get("frames") == expected_frames and marker.get("sha256") == sha256_bytes(data)


def segment_is_done(store: ObjectStore, layout: RunLayout, encode_key: str, index: int, expected_frames: int) -> bool:
    try:
        marker = store.get_json(layout.segment(encode_key, index, "json"))
    except (KeyError, ValueError):
        return False
    if marker.get("frames") != expected_frames:
        return False
    key = layout.segment(encode_key, index)
    path = store.local_path(key)
    if path is not None:
        return path.is_file() and sha256_file(path) == marker.get("sha256")
    try:
        return sha256_bytes(store.get_bytes(key)) == marker.get("sha256")
    except KeyError:
        return False


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- run.json ------------------------------------------------------------------------------

class RunRecord:
    """run.json, written only by the driver (the flow's process)."""

    def __init__(self, store: ObjectStore, layout: RunLayout):
        self.store = store
        self.layout = layout
        try:
            self.data = store.get_json(layout.run_json)
        except KeyError:
            self.data = {"run_id": layout.run_id, "invocations": [], "quarantined": {}}
        self.data.setdefault("invocations", [])
        self.data.setdefault("quarantined", {})

    def start_invocation(self, info: dict) -> None:
        self.data["status"] = "running"
        self.data["invocations"].append({"started_at": time.time(), "pid": os.getpid(), "chunks_colorized": [], "chunks_reused": [], **info})
        self.save()

    @property
    def current(self) -> dict:
        return self.data["invocations"][-1]

    def save(self) -> None:
        self.store.put_json(self.layout.run_json, self.data)

    def add_timing(self, stage: str, seconds: float) -> None:
        timings = self.current.setdefault("timings", {})
        timings[stage] = round(timings.get(stage, 0.0) + seconds, 3)
        self.save()

    def finish(self, status: str, **info) -> None:
        self.data["status"] = status
        self.current.update({"finished_at": time.time(), "status": status, **info})
        self.save()
