"""The one interface every colorization model implements.

The pipeline never knows which model it drives: the Ray actor, the ``vidcolor image`` command and
the evaluation all call ``Colorizer.predict_ab``. Models are found by a spec string through
``vidcolor.colorizers.load_colorizer``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameContext:
    """Where a batch of frames sits in the film. Real models ignore it; it lets tests and seeds
    depend on the chunk, and lets a model log where it is."""

    chunk_index: int = 0
    first_frame: int = 0


class Colorizer(ABC):
    """Predicts chroma (Lab a, b) from lightness (Lab L).

    ``predict_ab`` takes consecutive frames of one scene, L in [0, 100] as float32 (N, H, W) at the
    render size, and returns float32 (N, H, W, 2) ab. A model with temporal attention looks at up
    to ``temporal_context`` neighbours on each side *inside the batch it is given*; the caller
    passes that many extra frames around the ones it keeps, so batches join without a seam.
    """

    #: frames of context the model wants on each side of a frame (0 = image model)
    temporal_context: int = 0
    #: H and W of the render size must be multiples of this
    size_multiple: int = 32

    @property
    @abstractmethod
    def identity(self) -> str:
        """Model name plus a hash of its weights: part of the run id, so new weights = new run."""

    @abstractmethod
    def predict_ab(self, lightness: np.ndarray, context: FrameContext = FrameContext()) -> np.ndarray:
        ...

    def preferred_batch_size(self) -> int:
        return 8

    def set_temporal_attention(self, on: bool) -> None:
        """Off: every frame is predicted from itself alone (frame by frame). An image model has
        nothing to turn off."""
        if not on:
            self.temporal_context = 0

    def predict_sequence(self, lightness: np.ndarray, batch_size: int,
                         context: FrameContext = FrameContext()) -> Iterator[tuple[int, np.ndarray]]:
        """ab of consecutive frames of ONE scene, batch by batch: yields (first frame, ab of
        ``batch_size`` frames or fewer). Each batch is given ``temporal_context`` extra frames on
        each side, so batch edges are seamless. A model may compute those neighbours once instead
        (GanColorizer does); the result is the same."""
        n = lightness.shape[0]
        ctx = max(0, int(self.temporal_context))
        for s in range(0, n, batch_size):
            e = min(n, s + batch_size)
            s0, e0 = max(0, s - ctx), min(n, e + ctx)
            ab = self.predict_ab(lightness[s0:e0], FrameContext(context.chunk_index, context.first_frame + s0))
            yield s, ab[s - s0 : e - s0]

    def set_palette(self, palette, strength: float = 1.0) -> None:
        """Lean towards a reference palette's colours (``vidcolor.palette.Palette``) from now on;
        None clears it. Only a model that predicts a distribution over colours can; the rest
        raise ValueError."""
        if palette is not None:
            raise ValueError(f"{self.identity}: this model cannot follow a reference palette")
