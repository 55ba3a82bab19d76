"""How ffmpeg, ffprobe and PyAV are given a local file: by its exact path, and nothing else.

A bare name is parsed before it is opened: ``file:b.mp4``, ``concat:a|b`` or ``http:x`` pick a
protocol (so ``file:b.mp4`` opens ``b.mp4``), and ``-x.mp4`` reads as an option on a command line.
``file:`` followed by the absolute path is opened as exactly that file, whatever its name holds,
and the protocol whitelist keeps a demuxer from reaching anything but local files.
"""

from __future__ import annotations

import os

# Demuxers that open further resources (HLS playlists, concat lists) may open local files only.
PROTOCOL_WHITELIST = "file"
FF_INPUT_ARGS = ("-protocol_whitelist", PROTOCOL_WHITELIST)  # before an ffmpeg/ffprobe input
AV_INPUT_OPTIONS = {"protocol_whitelist": PROTOCOL_WHITELIST}  # av.open(..., options=...)


def ff_url(path: str | os.PathLike) -> str:
    """The name that opens ``path`` and only ``path``: ``file:`` + its absolute path."""
    return "file:" + os.path.abspath(os.fspath(path))
