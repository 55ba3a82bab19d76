"""What a film is: streams, exact rational frame rate, size, colour, rotation, audio, VFR.

``probe_video`` is also the gate for bad input: every problem becomes one BadInputError line
naming the file, before Ray or Prefect start.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from vidcolor.errors import BadInputError
from vidcolor.media.paths import FF_INPUT_ARGS, ff_url


@dataclass(frozen=True)
class VideoInfo:
    path: str
    container: str
    width: int
    height: int
    frame_rate: str  # rational "24000/1001" (r_frame_rate)
    avg_frame_rate: str
    time_base: str
    frame_count_header: int | None  # as the container claims; the split pass counts the truth
    duration: float | None
    start_time: float
    pix_fmt: str
    codec: str
    full_range: bool
    matrix: str  # "bt601" | "bt709"
    color_primaries: str | None
    color_trc: str | None
    color_space: str | None
    rotation: int
    audio_streams: int
    subtitle_streams: int
    subtitle_codecs: tuple[str, ...]
    variable_frame_rate: bool
    title: str | None
    bit_depth: int = 8  # of the luma samples
    field_order: str = "progressive"  # ffprobe's: progressive, tt, bb, tb, bt, or unknown
    extra_video: tuple[str, ...] = ()  # further video streams (not colorized), described for people

    @property
    def fps(self) -> Fraction:
        return Fraction(self.frame_rate)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["subtitle_codecs"] = list(self.subtitle_codecs)
        d["extra_video"] = list(self.extra_video)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VideoInfo":
        d = dict(d)
        d["subtitle_codecs"] = tuple(d.get("subtitle_codecs", ()))
        d["extra_video"] = tuple(d.get("extra_video", ()))
        return cls(**d)


def check_readable_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise BadInputError(str(path), "no such file")
    if p.is_dir():
        raise BadInputError(str(path), "is a directory, not a video file")
    if not p.is_file():
        raise BadInputError(str(path), "is not a regular file")
    if p.stat().st_size == 0:
        raise BadInputError(str(path), "is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise BadInputError(str(path), "is not readable (permission denied)")
    return p


def _ffprobe_json(path: Path) -> dict:
    cmd = ["ffprobe", "-v", "error", *FF_INPUT_ARGS, "-print_format", "json", "-show_format", "-show_streams", ff_url(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise BadInputError("ffprobe", "not found: install ffmpeg (Debian package 'ffmpeg')") from None
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["unreadable"])[-1]
        msg = msg.replace(ff_url(path), "").replace(str(path), "").strip(" :")
        if "moov atom not found" in msg or "partial file" in msg.lower():
            raise BadInputError(str(path), f"is truncated or corrupt ({msg})")
        if "Invalid data" in msg:
            raise BadInputError(str(path), "is not a video file ffmpeg can read (invalid data)")
        raise BadInputError(str(path), f"cannot be read by ffprobe ({msg})")
    return json.loads(proc.stdout or "{}")


def _rotation(stream: dict) -> int:
    for sd in stream.get("side_data_list", []) or []:
        if "rotation" in sd:
            return int(round(float(sd["rotation"]))) % 360
    rot = stream.get("tags", {}).get("rotate")
    return int(rot) % 360 if rot else 0


def _bit_depth(pix_fmt: str) -> int:
    import av

    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, TypeError):
        return 8


def _describe(index: int, stream: dict) -> str:
    return f"#{index} ({stream.get('codec_name', '?')} {stream.get('width', '?')}x{stream.get('height', '?')})"


def probe_video(path: str | os.PathLike) -> VideoInfo:
    p = check_readable_file(path)
    data = _ffprobe_json(p)
    streams = data.get("streams", [])
    fmt = data.get("format", {})
    videos = [
        s for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not videos:
        kinds = sorted({s.get("codec_type", "?") for s in streams})
        what = f"only {', '.join(kinds)} streams" if kinds else "no streams"
        raise BadInputError(str(path), f"has no video stream ({what})")
    v = videos[0]
    width, height = int(v.get("width") or 0), int(v.get("height") or 0)
    if width <= 0 or height <= 0:
        raise BadInputError(str(path), "video stream has no frame size (corrupt header?)")
    if width % 2 or height % 2:
        raise BadInputError(str(path), f"odd frame size {width}x{height} is not supported")
    r_rate = v.get("r_frame_rate") or "0/1"
    avg_rate = v.get("avg_frame_rate") or "0/1"
    if Fraction(r_rate) <= 0:
        raise BadInputError(str(path), "video stream has no frame rate")
    nb = v.get("nb_frames")
    duration = fmt.get("duration") or v.get("duration")
    matrix_tag = (v.get("color_space") or "").lower()
    if matrix_tag in ("bt709",):
        matrix = "bt709"
    elif matrix_tag in ("bt470bg", "smpte170m", "bt601", "fcc"):
        matrix = "bt601"
    else:  # unspecified: the usual convention by size
        matrix = "bt709" if height >= 720 else "bt601"
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    subs = [s for s in streams if s.get("codec_type") == "subtitle"]
    vfr = Fraction(avg_rate) > 0 and abs(Fraction(avg_rate) - Fraction(r_rate)) > Fraction(1, 1000) * Fraction(r_rate)
    return VideoInfo(
        path=str(p),
        container=fmt.get("format_name", ""),
        width=width,
        height=height,
        frame_rate=str(Fraction(r_rate)),
        avg_frame_rate=str(Fraction(avg_rate)) if Fraction(avg_rate) > 0 else str(Fraction(r_rate)),
        time_base=str(Fraction(v.get("time_base") or "1/90000")),
        frame_count_header=int(nb) if nb and str(nb).isdigit() else None,
        duration=float(duration) if duration not in (None, "N/A") else None,
        start_time=float(v.get("start_time") or 0.0) if v.get("start_time") not in (None, "N/A") else 0.0,
        pix_fmt=v.get("pix_fmt", ""),
        codec=v.get("codec_name", ""),
        full_range=(v.get("color_range") == "pc" or v.get("pix_fmt", "").startswith("yuvj")),
        matrix=matrix,
        color_primaries=v.get("color_primaries"),
        color_trc=v.get("color_transfer"),
        color_space=v.get("color_space"),
        rotation=_rotation(v),
        audio_streams=len(audio),
        subtitle_streams=len(subs),
        subtitle_codecs=tuple(s.get("codec_name", "") for s in subs),
        variable_frame_rate=bool(vfr),
        title=fmt.get("tags", {}).get("title"),
        bit_depth=_bit_depth(v.get("pix_fmt", "")),
        field_order=v.get("field_order") or "unknown",
        extra_video=tuple(_describe(s.get("index", k + 1), s) for k, s in enumerate(videos[1:])),
    )
