"""ffprobe/ffmpeg measurements used by the tests (real tools, no mocks)."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction

import numpy as np

from vidcolor.media.paths import ff_url


def probe(path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-print_format", "json", "-show_streams", "-show_format", ff_url(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


def make_rotated_clip(path, degrees: int, size: str, frames: int) -> None:
    """A grey H.264 .mp4 whose pictures are stored unrotated with a display matrix of ``degrees``
    (as phones write them): encoded plainly, then tagged by a stream copy, which is the way
    ffmpeg 5.1 writes the matrix."""
    plain = f"{path}.plain.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24", "-frames:v", str(frames),
                    "-vf", "hue=s=0", "-c:v", "libx264", "-pix_fmt", "yuv420p", plain], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", plain, "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(path)],
                   check=True)


def video_stream(info: dict) -> dict:
    return next(s for s in info["streams"] if s["codec_type"] == "video")


def stream_md5(path, selector: str) -> str:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", ff_url(path), "-map", selector, "-c", "copy", "-f", "md5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout
    return out.strip()


def luma_frame_hashes(path) -> list[str]:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", ff_url(path), "-map", "0:v:0", "-vf", "extractplanes=y", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout
    return [ln.split(",")[-1].strip() for ln in out.splitlines() if ln and not ln.startswith("#")]


def video_frame_hashes(path) -> list[str]:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", ff_url(path), "-map", "0:v:0", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout
    return [ln.split(",")[-1].strip() for ln in out.splitlines() if ln and not ln.startswith("#")]


def frame_pts_times(path) -> list[float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "csv=p=0", ff_url(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return [float(x.strip(",")) for x in out.split() if x.strip(",")]


def decode_yuv420(path):
    """Yield (Y, U, V) uint8 planes of every frame."""
    import av

    with av.open(ff_url(path)) as c:
        for frame in c.decode(video=0):
            if frame.format.name != "yuv420p":
                frame = frame.reformat(format="yuv420p")
            planes = []
            for p in frame.planes:
                buf = np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]
                planes.append(buf.copy())
            yield tuple(planes)


def mean_ab_per_frame(path, l_range=(30.0, 80.0)) -> np.ndarray:
    """Mean Lab ab of each output frame over pixels of mid lightness (where chroma is not
    clipped by the gamut), measured from the decoded YUV."""
    import cv2

    from vidcolor.color import rgb_to_lab, ycbcr_to_rgb

    means = []
    for y, u, v in decode_yuv420(path):
        h, w = u.shape
        y_half = cv2.resize(y, (w, h), interpolation=cv2.INTER_AREA)
        lab = rgb_to_lab(ycbcr_to_rgb(y_half, u, v, "bt601", False))
        mask = (lab[..., 0] > l_range[0]) & (lab[..., 0] < l_range[1])
        means.append(lab[mask][:, 1:].mean(axis=0) if mask.any() else np.array([np.nan, np.nan]))
    return np.array(means)


def rate(s: str) -> Fraction:
    return Fraction(s)
