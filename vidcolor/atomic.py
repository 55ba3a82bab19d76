"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Every writer in vidcolor that produces a file under a name someone may read (the output film,
weights, reports, caches, the local store) goes through ``atomic_path``: the data is written to a
hidden temp name in the same folder (same filesystem, so the rename is atomic), then renamed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

PARTIAL_OUTPUT_TAG = "vidcolor-partial"  # ".NAME.vidcolor-partial-<pid>-<random>.ext": a film being written


def temp_name_for(dest: str | os.PathLike, tag: str = "tmp") -> Path:
    """A hidden name beside ``dest``, unique to this call (threads may write side by side), that
    keeps its suffix (some writers pick the format by it)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}{dest.suffix}")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, tag: str = "tmp", fsync: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; on success it is renamed to ``dest``, on any error it is
    removed and ``dest`` is left as it was."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name_for(dest, tag)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(dest: str | os.PathLike, data: bytes, fsync: bool = False) -> None:
    with atomic_path(dest, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(dest: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(dest, text.encode())
