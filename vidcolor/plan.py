"""The chunk plan: which frames each chunk colorizes, and how neighbours overlap.

A chunk's *core* frames are the ones it outputs; its *extended* range adds up to ``overlap``
frames on each side, inside its scene only. Cores tile the film exactly once. Inside a scene,
neighbouring chunks both colorize the 2K frames around their shared boundary, and stitch blends
them with a linear ramp; across a hard cut nothing is blended.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from vidcolor.media.probe import VideoInfo


@dataclass(frozen=True)
class Chunk:
    index: int
    scene: int
    core_start: int
    core_end: int  # exclusive
    ext_start: int
    ext_end: int  # exclusive
    source_digest: str = ""  # state.array_digest of the chunk's source luma ("" in plans made before it)

    @property
    def core_frames(self) -> int:
        return self.core_end - self.core_start

    @property
    def ext_frames(self) -> int:
        return self.ext_end - self.ext_start


def split_scene(start: int, end: int, max_frames: int) -> list[tuple[int, int]]:
    """Core ranges for one scene: whole chunks of ``max_frames`` while more than two caps remain,
    then the rest split evenly (so no chunk is a sliver). Every core is at most ``max_frames``."""
    cores = []
    pos = start
    while end - pos > 2 * max_frames:
        cores.append((pos, pos + max_frames))
        pos += max_frames
    remaining = end - pos
    if remaining <= 0:
        return cores
    n = math.ceil(remaining / max_frames)
    bounds = [pos + round(i * remaining / n) for i in range(n + 1)]
    cores.extend(zip(bounds[:-1], bounds[1:]))
    return cores


def chunks_for_scenes(scene_starts: list[int], total_frames: int, max_frames: int, overlap: int) -> list[Chunk]:
    """The whole plan from scene boundaries (used by tests and to cross-check the streaming split)."""
    chunks: list[Chunk] = []
    bounds = list(scene_starts) + [total_frames]
    for scene, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        for cs, ce in split_scene(a, b, max_frames):
            chunks.append(make_chunk(len(chunks), scene, cs, ce, a, b, overlap))
    return chunks


def make_chunk(index: int, scene: int, cs: int, ce: int, scene_start: int, scene_end: int, overlap: int) -> Chunk:
    return Chunk(index, scene, cs, ce, max(scene_start, cs - overlap), min(scene_end, ce + overlap))


# Shapes of the blend ramp r in [0, 1] -> weight; each satisfies f(r) + f(1 - r) = 1, so the two
# neighbours' weights sum to 1 across an overlap. Linear is the pipeline's; docs/temporal.md compares.
RAMPS = {
    "linear": lambda r: r,
    "cosine": lambda r: 0.5 - 0.5 * math.cos(math.pi * r),
    "step": lambda r: 1.0 if r > 0.5 else 0.0,  # no blend: a hard switch at the boundary
}


def blend_weight(chunk: Chunk, frame: int, overlap: int, first_in_scene: bool, last_in_scene: bool,
                 ramp: str = "linear") -> float:
    """Unnormalised weight of ``chunk``'s prediction at ``frame``: a ramp (linear by default) over
    the 2K frames around each boundary it shares with a neighbour in its scene, 1 inside its core, 0
    outside its extended range. Neighbours' ramps sum to 1 at every frame of an overlap."""
    if not (chunk.ext_start <= frame < chunk.ext_end):
        return 0.0
    if overlap <= 0:
        return 1.0 if chunk.core_start <= frame < chunk.core_end else 0.0
    shape = RAMPS[ramp]
    w = 1.0
    if not first_in_scene:
        w *= shape(min(1.0, max(0.0, (frame - (chunk.core_start - overlap) + 0.5) / (2 * overlap))))
    if not last_in_scene:
        w *= shape(min(1.0, max(0.0, ((chunk.core_end + overlap) - frame - 0.5) / (2 * overlap))))
    return w


def contributors(chunks: list[Chunk], index: int) -> list[Chunk]:
    """Chunks whose predictions are blended into ``chunks[index]``'s core frames."""
    me = chunks[index]
    return [
        c for c in chunks
        if c.scene == me.scene and c.ext_start < me.core_end and c.ext_end > me.core_start
    ]


def scene_chunks(chunks: list[Chunk], index: int) -> list[int]:
    """Indices of the chunks of chunk ``index``'s scene, in film order."""
    return [c.index for c in chunks if c.scene == chunks[index].scene]


def stitch_ready(chunks: list[Chunk], index: int, done: set[int], passes: dict[int, list[int]]) -> bool:
    """Whether chunk ``index``'s stitch may start, given the chunks colorized (``done``): when its
    neighbours in the scene are. ``passes``: the scenes the stabiliser passes over, first chunk ->
    its chunks; for those the first chunk is ready once the whole scene is (the pass then stitches
    every chunk of it) and the others never on their own."""
    if index in passes:
        return all(i in done for i in passes[index])
    if any(index in members for members in passes.values()):
        return False
    return all(c.index in done for c in contributors(chunks, index))


def completed_by(chunks: list[Chunk], index: int) -> list[int]:
    """The chunks whose readiness (``stitch_ready``) chunk ``index`` being colorized may complete:
    those its prediction is blended into, and its scene's first chunk (a stabiliser pass)."""
    return [c.index for c in contributors(chunks, index)] + [scene_chunks(chunks, index)[0]]


def frame_weights(chunks: list[Chunk], index: int, overlap: int, ramp: str = "linear") -> dict[int, list[float]]:
    """For each contributor of chunk ``index``: normalised weights over its core frames."""
    me = chunks[index]
    scene_chunks = [c for c in chunks if c.scene == me.scene]
    first, last = scene_chunks[0].index, scene_chunks[-1].index
    contrib = contributors(chunks, index)
    raw = {
        c.index: [blend_weight(c, f, overlap, c.index == first, c.index == last, ramp) for f in range(me.core_start, me.core_end)]
        for c in contrib
    }
    out = {c: [0.0] * me.core_frames for c in raw}
    for k in range(me.core_frames):
        total = sum(raw[c][k] for c in raw)
        if total <= 0:  # cannot happen for a well-formed plan; fall back to the chunk's own frame
            out[index][k] = 1.0
            continue
        for c in raw:
            out[c][k] = raw[c][k] / total
    return out


PLAN_FORMAT = 1
_CHUNK_BOUNDS = ("index", "scene", "core_start", "core_end", "ext_start", "ext_end")


def chunk_from_doc(d: dict) -> Chunk:
    """A chunk of plan.json's chunk table (TypeError / ValueError / KeyError when malformed)."""
    return Chunk(**{k: int(d[k]) for k in _CHUNK_BOUNDS}, source_digest=str(d.get("source_digest", "")))


@dataclass(frozen=True)
class PlanSettings:
    """The chroma settings the plan was cut with."""

    max_chunk_frames: int
    overlap_frames: int
    scene_threshold: float
    min_scene_frames: int


@dataclass(frozen=True)
class Plan:
    """plan.json: the probe, the cuts and the chunk table of one run, written before any colorize
    work and never changed after (the run id hashes everything it was made from)."""

    run_id: str
    video: VideoInfo
    total_frames: int
    render_size: tuple[int, int]  # (w, h) of the chunk sources
    settings: PlanSettings
    scene_starts: tuple[int, ...]
    chunks: tuple[Chunk, ...]
    split_seconds: float = 0.0
    version: int = PLAN_FORMAT

    @property
    def overlap(self) -> int:
        return self.settings.overlap_frames

    def to_dict(self) -> dict:
        return {
            "version": self.version, "run_id": self.run_id, "video": self.video.to_dict(),
            "total_frames": self.total_frames, "render_size": list(self.render_size),
            "settings": asdict(self.settings), "scene_starts": list(self.scene_starts),
            "chunks": [asdict(c) for c in self.chunks], "split_seconds": self.split_seconds,
        }

    @classmethod
    def from_dict(cls, doc: dict) -> "Plan":
        """KeyError / TypeError / ValueError when the document is not a well-formed plan."""
        chunks = tuple(chunk_from_doc(d) for d in doc["chunks"])
        plan = cls(
            run_id=str(doc["run_id"]), video=VideoInfo.from_dict(doc["video"]), total_frames=int(doc["total_frames"]),
            render_size=tuple(int(v) for v in doc["render_size"]), settings=PlanSettings(**doc["settings"]),
            scene_starts=tuple(int(s) for s in doc["scene_starts"]), chunks=chunks,
            split_seconds=float(doc.get("split_seconds", 0.0)), version=int(doc.get("version", PLAN_FORMAT)),
        )
        plan.check()
        return plan

    def check(self) -> None:
        """The chunk table tiles the film: cores in order, each inside its extended range."""
        pos = 0
        for i, c in enumerate(self.chunks):
            if c.index != i or c.core_start != pos or not (c.ext_start <= c.core_start < c.core_end <= c.ext_end):
                raise ValueError(f"chunk {i} does not follow on from the chunks before it")
            pos = c.core_end
        if pos != self.total_frames:
            raise ValueError(f"the chunks cover {pos} frames, the plan says {self.total_frames}")
