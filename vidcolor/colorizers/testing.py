"""Deterministic colorizers that make pipeline behaviour measurable.

They live in the package (not in tests/) because Ray workers must import them by spec string.

  test:chunk-constant          each chunk one flat colour, from a fixed palette by chunk index
  test:luma-ramp               ab a fixed function of L (same input = same output, any chunking)
  test:slow:SECONDS            luma-ramp, sleeping SECONDS per batch (to kill a run mid-way)
  test:fail-chunk:I            raises on every frame batch of chunk I
  test:flaky:DIR               raises the first time it sees each chunk (records seen chunks in DIR)
  test:die-once:DIR            kills its own worker process the first time it sees chunk 0
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np

from vidcolor.colorizer import Colorizer, FrameContext

# Far apart in ab so seams are easy to measure.
CHUNK_PALETTE = np.array(
    [[40.0, 40.0], [-40.0, 30.0], [20.0, -50.0], [-30.0, -30.0], [50.0, -10.0], [0.0, 55.0]],
    dtype=np.float32,
)


class ChunkConstantColorizer(Colorizer):
    identity = "test:chunk-constant"

    def predict_ab(self, lightness, context=FrameContext()):
        n, h, w = lightness.shape
        ab = CHUNK_PALETTE[context.chunk_index % len(CHUNK_PALETTE)]
        return np.broadcast_to(ab, (n, h, w, 2)).astype(np.float32).copy()


class LumaRampColorizer(Colorizer):
    """a, b depend only on L: warm highlights, cool shadows."""

    identity = "test:luma-ramp"

    def predict_ab(self, lightness, context=FrameContext()):
        t = lightness.astype(np.float32) / 100.0
        a = 30.0 * t - 10.0
        b = 40.0 * t - 15.0
        return np.stack([a, b], axis=-1)


class SlowColorizer(LumaRampColorizer):
    def __init__(self, seconds: float):
        self.seconds = seconds

    @property
    def identity(self):  # same output as luma-ramp, so a slow run and a fast run share run ids
        return "test:luma-ramp"

    def predict_ab(self, lightness, context=FrameContext()):
        time.sleep(self.seconds)
        return super().predict_ab(lightness, context)


class FailChunkColorizer(LumaRampColorizer):
    def __init__(self, chunk: int):
        self.chunk = chunk

    @property
    def identity(self):
        return f"test:fail-chunk:{self.chunk}"

    def predict_ab(self, lightness, context=FrameContext()):
        if context.chunk_index == self.chunk:
            raise RuntimeError(f"test colorizer fails chunk {self.chunk} on purpose")
        return super().predict_ab(lightness, context)


class _OncePerChunk(LumaRampColorizer):
    """Remembers, in a folder shared by all workers, which chunks it has seen."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def identity(self):
        return "test:luma-ramp"

    def first_time(self, chunk: int) -> bool:
        try:
            fd = os.open(self.folder / f"seen-{chunk}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.close(fd)
        return True


class FlakyColorizer(_OncePerChunk):
    def predict_ab(self, lightness, context=FrameContext()):
        if self.first_time(context.chunk_index):
            raise RuntimeError(f"test colorizer: transient failure on chunk {context.chunk_index}")
        return super().predict_ab(lightness, context)


class DieOnceColorizer(_OncePerChunk):
    def predict_ab(self, lightness, context=FrameContext()):
        if context.chunk_index == 0 and self.first_time(0):
            os._exit(17)  # the worker process dies, as on an OOM kill
        return super().predict_ab(lightness, context)


def load_test_colorizer(spec: str) -> Colorizer:
    parts = spec.split(":", 2)
    name = parts[1] if len(parts) > 1 else ""
    arg = parts[2] if len(parts) > 2 else None
    if name == "chunk-constant":
        return ChunkConstantColorizer()
    if name == "luma-ramp":
        return LumaRampColorizer()
    if name == "slow":
        return SlowColorizer(float(arg or 0.5))
    if name == "fail-chunk":
        return FailChunkColorizer(int(arg or 0))
    if name == "flaky":
        return FlakyColorizer(arg or _default_dir(spec))
    if name == "die-once":
        return DieOnceColorizer(arg or _default_dir(spec))
    raise ValueError(f"unknown test colorizer {spec!r}")


def _default_dir(spec: str) -> str:
    return os.path.join("/tmp", "vidcolor-test-" + hashlib.sha1(spec.encode()).hexdigest()[:8])
