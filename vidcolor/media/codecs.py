"""The codec registry: every fact vidcolor knows about an output codec, in one place.

Used by the encoder (encoder name, pixel format, options), the settings check (known codec, which
containers hold it, the quality range) and the CLI help.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

OUTPUT_CONTAINERS = (".mp4", ".mkv", ".mov")


@dataclass(frozen=True)
class Codec:
    name: str
    encoder: str  # ffmpeg / PyAV encoder
    pix_fmt: str
    containers: tuple[str, ...]
    about: str  # a few words for the CLI help
    default_quality: int | None = None  # crf (x264/x265) or qscale (prores) when --crf is not given
    options: Callable[[int | None, str], dict[str, str]] = field(default=lambda q, preset: {}, repr=False)
    deep_pix_fmt: str | None = None  # for 10-bit sources; None: this codec writes 8-bit only here


def _x26x(extra: dict[str, str]) -> Callable[[int | None, str], dict[str, str]]:
    return lambda q, preset: {"crf": str(q), "preset": preset, **extra}


CODECS: dict[str, Codec] = {c.name: c for c in (
    Codec("h264", "libx264", "yuv420p", (".mp4", ".mkv", ".mov"), "H.264", 16, _x26x({})),
    Codec("hevc", "libx265", "yuv420p", (".mp4", ".mkv", ".mov"), "H.265", 18, _x26x({"x265-params": "log-level=error"}),
          deep_pix_fmt="yuv420p10le"),
    Codec("ffv1", "ffv1", "yuv420p", (".mkv",), "lossless", None,
          lambda q, preset: {"level": "3", "slicecrc": "1", "g": "1"}, deep_pix_fmt="yuv420p10le"),
    Codec("prores", "prores_ks", "yuv422p10le", (".mov", ".mkv"), "archive master", None,
          lambda q, preset: {"profile": "3", **({"qscale": str(q)} if q is not None else {})},  # profile 3 = HQ
          deep_pix_fmt="yuv422p10le"),
)}

QUALITY_RANGE = (0, 51)
DEEP_BITS = 10  # the deepest luma vidcolor carries (10-bit sources, with a codec that has deep_pix_fmt)


def deep_codecs() -> list[str]:
    return [c.name for c in CODECS.values() if c.deep_pix_fmt]


def codec_help() -> str:
    return "Video codec: " + ", ".join(f"{c.name} ({c.about})" for c in CODECS.values()) + "."


def quality_help() -> str:
    defaults = " / ".join(f"{c.name} {c.default_quality}" for c in CODECS.values() if c.default_quality is not None)
    return f"Quality for h264/hevc (crf, lower = better; default {defaults}); qscale for prores."


def encoder_options(codec: str, quality: int | None, preset: str) -> dict[str, str]:
    c = CODECS[codec]
    return c.options(quality if quality is not None else c.default_quality, preset)
