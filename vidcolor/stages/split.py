"""Split: ONE decode pass over the film's luma finds hard cuts and writes every chunk's input.

Frames stream through: each is downscaled once for the scene detector and once to the render
size. A chunk is written as soon as its frames, its overlap and the detector's look-behind are all
seen, so memory holds about two chunks, never the film. plan.json is written last: when it exists,
every chunk source it names exists.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction

import cv2
import numpy as np

from vidcolor.errors import BadInputError, RunFailedError
from vidcolor.failpoints import failpoint
from vidcolor.media.luma import iter_luma
from vidcolor.media.probe import VideoInfo
from vidcolor.plan import Chunk, Plan, PlanSettings, make_chunk, split_scene
from vidcolor.render import render_size
from vidcolor.state import (RunLayout, array_digest, frame_table_bytes, json_bytes, load_frame_table, pack_array,
                            write_split_done)
from vidcolor.settings import ChromaSettings
from vidcolor.store import ObjectStore

DETECT_WIDTH = 256


class SceneCutDetector:
    """PySceneDetect's ContentDetector (luma only, B&W film has no hue) fed our own frames."""

    def __init__(self, fps: Fraction, threshold: float, min_scene_frames: int):
        from scenedetect.common import FrameTimecode
        from scenedetect.detectors import ContentDetector

        self._tc = FrameTimecode
        self._fps = float(fps)
        self.detector = ContentDetector(threshold=threshold, min_scene_len=min_scene_frames, luma_only=True)
        # Frames the detector may report a cut behind the frame it is fed (its flash filter).
        self.lag = min_scene_frames + 2

    def feed(self, index: int, y_small: np.ndarray) -> list[int]:
        bgr = cv2.cvtColor(y_small, cv2.COLOR_GRAY2BGR)
        cuts = self.detector.process_frame(self._tc(index, fps=self._fps), bgr)
        return [c.frame_num for c in cuts]

    def finish(self, last_index: int) -> list[int]:
        return [c.frame_num for c in self.detector.post_process(self._tc(last_index, fps=self._fps))]


class _ChunkWriter:
    """Turns the stream of render-size frames into chunk source files."""

    def __init__(self, store: ObjectStore, layout: RunLayout, max_frames: int, overlap: int, lag: int):
        self.store, self.layout = store, layout
        self.max_frames, self.overlap, self.lag = max_frames, overlap, lag
        self.frames: deque[np.ndarray] = deque()
        self.buffer_start = 0  # absolute index of frames[0]
        self.scene = 0
        self.scene_start = 0
        self.next_core = 0  # first frame of the scene not yet in a written chunk
        self.chunks: list[Chunk] = []
        self.scene_starts = [0]

    def push(self, frame: np.ndarray) -> None:
        self.frames.append(frame)

    @property
    def seen(self) -> int:
        return self.buffer_start + len(self.frames)

    def cut(self, at: int) -> None:
        if at <= self.scene_start or at < self.next_core or at > self.seen:
            return  # before the current scene, or already covered by a written chunk
        self._close_scene(at)
        self.scene += 1
        self.scene_start = self.next_core = at
        self.scene_starts.append(at)

    def maybe_emit(self) -> None:
        # Whole caps while more than two caps of the scene are certainly cut-free (see split_scene).
        while self.seen - self.lag > self.next_core + 2 * self.max_frames:
            self._write(self.next_core, self.next_core + self.max_frames, scene_end=None)
            self.next_core += self.max_frames
            self._trim()

    def finish(self, total: int) -> None:
        self._close_scene(total)

    def _close_scene(self, end: int) -> None:
        for cs, ce in split_scene(self.next_core, end, self.max_frames):
            self._write(cs, ce, scene_end=end)
        self.next_core = end
        self._trim()

    def _write(self, cs: int, ce: int, scene_end: int | None) -> None:
        # scene_end None: the scene goes on for more than a cap beyond ce, so the overlap fits.
        chunk = make_chunk(len(self.chunks), self.scene, cs, ce, self.scene_start,
                           scene_end if scene_end is not None else ce + self.overlap, self.overlap)
        lo = chunk.ext_start - self.buffer_start
        hi = chunk.ext_end - self.buffer_start
        luma = np.stack([self.frames[k] for k in range(lo, hi)])
        self.store.put_bytes(self.layout.chunk(chunk.index, "source.npz"), pack_array(luma=luma))
        self.chunks.append(replace(chunk, source_digest=array_digest(luma)))
        failpoint("split")

    def _trim(self) -> None:
        keep_from = max(self.scene_start, self.next_core - self.overlap)
        while self.buffer_start < keep_from and self.frames:
            self.frames.popleft()
            self.buffer_start += 1


def split_film(
    store: ObjectStore,
    layout: RunLayout,
    source_path: str,
    info: VideoInfo,
    settings: ChromaSettings,
    size_multiple: int,
    on_frames: Callable[[int], None] | None = None,
) -> Plan:
    """Decode once, detect cuts, write chunk sources, frames.parquet and plan.json; return the plan."""
    t0 = time.time()
    rw, rh = render_size(info.width, info.height, settings.render_size, size_multiple)
    dw = min(DETECT_WIDTH, info.width)
    dh = max(2, int(round(info.height * dw / info.width)))
    detector = SceneCutDetector(info.fps, settings.scene_threshold, settings.min_scene_frames)
    writer = _ChunkWriter(store, layout, settings.max_chunk_frames, settings.overlap_frames, detector.lag)
    pts, durations = [], []
    last = -1
    for frame in iter_luma(source_path):
        last = frame.index
        pts.append(frame.pts)
        durations.append(frame.duration)
        for c in detector.feed(frame.index, cv2.resize(frame.y, (dw, dh), interpolation=cv2.INTER_AREA)):
            writer.cut(c)
        writer.push(cv2.resize(frame.y, (rw, rh), interpolation=cv2.INTER_AREA))
        writer.maybe_emit()
        if on_frames and frame.index % 16 == 15:
            on_frames(16)
    total = last + 1
    if total == 0:
        raise BadInputError(source_path, "has a video stream but no frame could be decoded")
    if info.frame_count_header and total < info.frame_count_header:
        raise BadInputError(
            source_path,
            f"is truncated: the header promises {info.frame_count_header} frames, only {total} decode",
        )
    for c in detector.finish(last):
        writer.cut(c)
    writer.finish(total)
    if on_frames:
        on_frames(total % 16)

    if any(p is None for p in pts):
        raise BadInputError(source_path, "frames without timestamps are not supported (remux it first)")
    plan = Plan(
        run_id=layout.run_id,
        video=info,
        total_frames=total,
        render_size=(rw, rh),
        settings=PlanSettings(settings.max_chunk_frames, settings.overlap_frames, settings.scene_threshold,
                              settings.min_scene_frames),
        scene_starts=tuple(writer.scene_starts),
        chunks=tuple(writer.chunks),
        split_seconds=round(time.time() - t0, 3),
    )
    write_split_done(store, layout, json_bytes(plan.to_dict()), frame_table_bytes(pts, durations))
    return plan


def rewrite_chunk_sources(store: ObjectStore, layout: RunLayout, plan: Plan, source_path: str,
                          indices: list[int]) -> None:
    """Split the chunks ``indices`` again (their source files were damaged or lost): decode each
    one's extended range from the film (frame-accurate seek by the recorded pts), render it as the
    split did, and write it back only when it matches the digest in the plan."""
    pts = load_frame_table(store, layout).column("pts").to_pylist()
    rw, rh = plan.render_size
    for i in indices:
        chunk = plan.chunks[i]
        frames = []
        with contextlib.closing(iter_luma(source_path, start_pts=pts[chunk.ext_start], first_index=chunk.ext_start)) as it:
            for frame in it:
                frames.append(cv2.resize(frame.y, (rw, rh), interpolation=cv2.INTER_AREA))
                if len(frames) == chunk.ext_frames:
                    break
        luma = np.stack(frames) if frames else np.zeros((0, rh, rw), np.uint8)
        if luma.shape[0] != chunk.ext_frames or (chunk.source_digest and array_digest(luma) != chunk.source_digest):
            raise RunFailedError(source_path, f"chunk {i} decodes differently from when the film was split; "
                                              f"delete {layout.root} in the store and run again")
        store.put_bytes(layout.chunk(i, "source.npz"), pack_array(luma=luma))
