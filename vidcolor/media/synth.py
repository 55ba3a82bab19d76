"""Synthetic black-and-white films with known structure: moving content, hard cuts at known
frames, stereo audio, a subtitle track and a title. Used by ``vidcolor sample`` and the tests."""

from __future__ import annotations

import os
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import ffmpeg

from vidcolor.media.paths import ff_url

# lavfi sources that move and look nothing alike, so every cut between them is a hard cut
SCENE_SOURCES = [
    "testsrc2=size={w}x{h}:rate={r}",
    "mandelbrot=size={w}x{h}:rate={r}:maxiter=64",
    "life=size={w}x{h}:rate={r}:mold=10:ratio=0.1:death_color=#202020:life_color=#e0e0e0",
    "cellauto=size={w}x{h}:rate={r}:rule=110",
]


def make_test_film(
    path: str | os.PathLike,
    scene_frames: list[int],
    size: tuple[int, int] = (320, 240),
    rate: str = "24000/1001",
    audio: bool = True,
    subtitles: bool = True,
    title: str | None = "vidcolor test film",
    video_codec: str = "libx264",
    extra_args: list[str] | None = None,
) -> dict:
    """Write a grayscale film whose scene ``k`` has ``scene_frames[k]`` frames. Returns the cut
    frames and counts."""
    path = Path(path)
    w, h = size
    fps = Fraction(rate)
    parts = []
    for k, n in enumerate(scene_frames):
        src = SCENE_SOURCES[k % len(SCENE_SOURCES)].format(w=w, h=h, r=rate)
        # Start later scenes of the same source elsewhere so repeated sources still cut hard.
        stream = ffmpeg.input(src, f="lavfi").trim(start_frame=(k // len(SCENE_SOURCES)) * 37, end_frame=(k // len(SCENE_SOURCES)) * 37 + n)
        parts.append(stream.setpts("PTS-STARTPTS").filter("format", "yuv420p"))
    video = ffmpeg.concat(*parts, v=1, a=0) if len(parts) > 1 else parts[0]
    video = video.filter("hue", s=0).filter("format", "yuv420p")
    total = sum(scene_frames)
    duration = float(total / fps)
    inputs = [video]
    out_kwargs: dict = {"vcodec": video_codec, "pix_fmt": "yuv420p", "r": rate, "vsync": "cfr"}
    if video_codec == "libx264":
        out_kwargs.update({"crf": 18, "preset": "veryfast"})
    tmpdir = tempfile.mkdtemp(prefix="vidcolor-synth-")
    if audio:
        tone = ffmpeg.input(f"aevalsrc=0.2*sin(440*2*PI*t)|0.2*sin(660*2*PI*t):s=48000:d={duration:.6f}", f="lavfi")
        inputs.append(tone)
        out_kwargs["acodec"] = "aac"
        out_kwargs["ac"] = 2
    if subtitles:
        srt = Path(tmpdir, "subs.srt")
        srt.write_text("1\n00:00:00,200 --> 00:00:01,500\nA test subtitle.\n\n2\n00:00:02,000 --> 00:00:03,000\nSecond line.\n")
        inputs.append(ffmpeg.input(ff_url(srt)))
        out_kwargs["scodec"] = "mov_text" if path.suffix.lower() in (".mp4", ".mov") else "srt"
    if title:
        out_kwargs["metadata"] = f"title={title}"
    out = ffmpeg.output(*inputs, ff_url(path), **out_kwargs)
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"] + out.get_args()
    if extra_args:
        args = args[:-1] + list(extra_args) + args[-1:]
    subprocess.run(args, check=True)
    cuts = [sum(scene_frames[:k]) for k in range(1, len(scene_frames))]
    return {"frames": total, "cuts": cuts, "fps": rate, "size": size}
