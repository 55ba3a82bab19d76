"""What a generator weights file says about itself, read from its safetensors header alone.

Torch-free and cheap (a few KB read plus one hash of the file), so the driver can check a --model,
name the run and size its frames without building the network: only the Ray actors load it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = "vidcolor-gan-mnv2"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "generator.safetensors"
GAN_SIZE_MULTIPLE = 32  # the generator downsamples 5 times
_MAX_HEADER = 100 << 20


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file; ValueError when it is not one."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError("file too short for a safetensors header")
        (n,) = struct.unpack("<Q", raw)
        if not 0 < n <= _MAX_HEADER:
            raise ValueError("not a safetensors header")
        header = f.read(n)
    try:
        doc = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("not a safetensors header") from None
    if not isinstance(doc, dict):
        raise ValueError("not a safetensors header")
    return dict(doc.get("__metadata__") or {})


def check_weights_file(spec: str) -> dict[str, str]:
    """The metadata of generator weights at ``spec``; FileNotFoundError or ValueError naming the
    spec and the problem."""
    if spec.startswith("s3://"):
        raise ValueError(f"{spec}: loading weights from object storage is not supported yet; "
                         "download the .safetensors file and pass its path")
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{spec}: no such weights file")
    if not path.is_file() or path.suffix != ".safetensors":
        raise ValueError(f"{spec}: weights must be a .safetensors file")
    try:
        meta = read_metadata(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{spec}: not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None
    if "config" not in meta:
        raise ValueError(f"{spec}: safetensors file without vidcolor generator metadata (no 'config')")
    return meta


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _weights_digest(path: str, size: int, mtime_ns: int) -> str:
    """The weights' sha256, hashed once per file version: a batch names every film's run with it
    (size and mtime in the key, so an edited file is hashed again)."""
    return file_sha256(path)


@dataclass(frozen=True)
class WeightsInfo:
    path: Path
    identity: str  # model name + hash of the file: part of the run id
    head: str  # "bins" (a distribution over ab) or "regression"
    window: int  # frames the temporal attention looks at


def weights_info(path: str | Path, meta: dict[str, str] | None = None) -> WeightsInfo:
    path = Path(path)
    meta = read_metadata(path) if meta is None else meta
    config = json.loads(meta.get("config", "{}"))
    st = path.stat()
    identity = f"{meta.get('name', MODEL_NAME)}-{_weights_digest(str(path.resolve()), st.st_size, st.st_mtime_ns)[:12]}"
    return WeightsInfo(path, identity, config.get("head", "bins"), int(config.get("window", 3)))
