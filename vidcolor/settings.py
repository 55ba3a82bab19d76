"""Frozen settings of a colorize run.

``chroma_key`` covers what changes the colorized chroma (part of the run id); ``encode_key``
covers what only changes the encode, so a new --crf or --codec reuses every colorized chunk.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ChromaSettings:
    model: str = "default"
    render_size: int = 256  # short side of the frames the model sees, rounded to its size multiple
    max_chunk_frames: int = 240
    overlap_frames: int = 8
    scene_threshold: float = 27.0
    min_scene_frames: int = 8
    palette: str = ""  # a reference palette (vidcolor.palette.Palette.to_text()); "" = none
    palette_strength: float = 1.0  # how hard the model leans towards it (0 = not at all)
    temporal_attention: bool = True  # the model sees neighbouring frames of the scene (False: frame by frame)
    stabilize: bool = True  # flow-guided chroma stabiliser (vidcolor.stabilize) on each chunk
    stabilize_strength: float = 0.97  # its weight on the flow-carried chroma where the flow is trusted (0-1)
    # Colour keyframes (vidcolor.keyframes): a folder of colour frames named by frame index; "" = none.
    # Not part of the run id: each chunk's marker records the digest of the keyframes that steer it.
    keyframes: str = ""
    keyframe_palette: bool = True  # scenes without a keyframe are led by the nearest keyframe's palette

    def key(self, model_identity: str) -> dict:
        d = asdict(self)
        d["model"] = model_identity
        if not self.palette or self.palette_strength == 0:
            # without a reference the chroma is what it was before palettes existed: same run id
            del d["palette"], d["palette_strength"]
        if not self.stabilize:
            del d["stabilize_strength"]
        del d["keyframes"], d["keyframe_palette"]  # per chunk, in its marker (vidcolor.keyframes)
        return d

    @property
    def stabilizer_strength(self) -> float:
        """What the actors apply: 0 = no stabiliser."""
        return self.stabilize_strength if self.stabilize else 0.0


@dataclass(frozen=True)
class EncodeSettings:
    codec: str = "h264"
    crf: int | None = None  # None = the codec's default quality for a master (see stitch)
    preset: str = "medium"

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ExecutionSettings:
    """How a run executes; never changes its output."""

    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 0.0  # 0 = auto: the node's cores shared by the actors on it (1 CPU reserved each)
    max_attempts: int = 3
    stitch_parallelism: int = 2
    batch_size: int = 0  # frames per model call; 0 = the colorizer's preferred_batch_size()

    @property
    def actor_cpus(self) -> float:
        """The CPUs Ray reserves for each actor (auto reserves one and uses every core it may)."""
        return self.cpus_per_worker or 1.0
