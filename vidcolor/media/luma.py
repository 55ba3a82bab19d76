"""Decode the luma (Y') plane of a film, frame by frame, with PyAV.

The Y' plane of 8-bit YUV and grey sources is taken as stored (no conversion), which is what lets
the output carry the source's luma unchanged. Other pixel formats are converted to yuv420p first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from vidcolor.errors import BadInputError
from vidcolor.media.paths import AV_INPUT_OPTIONS, ff_url

# 8-bit formats whose first plane is the luma plane as stored.
_Y_FIRST_8BIT = {
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p",
    "yuv411p", "yuv410p", "gray", "nv12", "nv21", "nv16", "yuva420p",
}


@dataclass
class LumaFrame:
    index: int
    pts: int | None
    duration: int | None
    y: np.ndarray  # (H, W) uint8, or uint16 (0-1023) when 10 bits were asked for; a private copy


def _y_plane(frame: av.VideoFrame) -> np.ndarray:
    if frame.format.name not in _Y_FIRST_8BIT:
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    buf = np.frombuffer(plane, dtype=np.uint8)
    return buf.reshape(plane.height, plane.line_size)[:, : plane.width].copy()


def _y_plane_10bit(frame: av.VideoFrame) -> np.ndarray:
    if frame.format.name != "yuv420p10le":
        frame = frame.reformat(format="yuv420p10le")  # the luma plane keeps its 10-bit samples
    plane = frame.planes[0]
    buf = np.frombuffer(plane, dtype=np.uint16)
    return buf.reshape(plane.height, plane.line_size // 2)[:, : plane.width].copy()


def open_video(path: str):
    try:
        container = av.open(ff_url(path), metadata_errors="ignore", options=AV_INPUT_OPTIONS)
    except av.error.FFmpegError as e:
        raise BadInputError(str(path), f"cannot be opened ({e.strerror or e})") from None
    if not container.streams.video:
        container.close()
        raise BadInputError(str(path), "has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def iter_luma(path: str, start_pts: int | None = None, first_index: int = 0, bits: int = 8) -> Iterator[LumaFrame]:
    """Frames in presentation order from the start, or from the frame whose pts is ``start_pts``
    (frame-accurate: seeks to the keyframe before it, then decodes forward). ``bits`` 10: the
    luma as 10-bit samples (uint16), for carrying a 10-bit film's luma unchanged."""
    y_plane = _y_plane_10bit if bits > 8 else _y_plane
    container, stream = open_video(path)
    try:
        if start_pts is not None:
            container.seek(start_pts, stream=stream, backward=True, any_frame=False)
        index = first_index
        started = start_pts is None
        try:
            for frame in container.decode(stream):
                if not started:
                    if frame.pts is None or frame.pts < start_pts:
                        continue
                    if frame.pts > start_pts:
                        raise RuntimeError(
                            f"{path}: seek overshot frame pts {start_pts} (landed on {frame.pts})"
                        )
                    started = True
                yield LumaFrame(index, frame.pts, frame.duration, y_plane(frame))
                index += 1
        except av.error.InvalidDataError as e:
            raise BadInputError(str(path), f"is truncated or corrupt at frame {index} ({e.strerror})") from None
    finally:
        container.close()


def iter_rgb(path: str) -> Iterator[np.ndarray]:
    """Frames in presentation order as (H, W, 3) uint8 RGB (for measuring, not for the pipeline,
    which never leaves the source's own luma)."""
    container, stream = open_video(path)
    try:
        index = 0
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                index += 1
        except av.error.InvalidDataError as e:
            raise BadInputError(str(path), f"is truncated or corrupt at frame {index} ({e.strerror})") from None
    finally:
        container.close()
