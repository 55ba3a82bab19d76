"""The object-store interface. Keys are '/'-separated strings under the store's root.

Every write is atomic: a reader sees the old object or the whole new one, never a part. The local
store writes a temp file and renames it; S3 makes an object visible only when its (multipart)
upload completes.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


def is_s3_uri(uri: str) -> bool:
    return str(uri).startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def cache_root() -> Path:
    """vidcolor's folder in the user's cache: $VIDCOLOR_CACHE_DIR, else $XDG_CACHE_HOME/vidcolor."""
    if os.environ.get("VIDCOLOR_CACHE_DIR"):
        return Path(os.environ["VIDCOLOR_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "vidcolor"


def default_store_uri() -> str:
    return os.environ.get("VIDCOLOR_STORE") or str(cache_root() / "store")


@dataclass(frozen=True)
class ObjectStat:
    size: int
    etag: str  # changes whenever the content does (S3 ETag; mtime and size locally)


class ObjectStore(ABC):
    uri: str

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; KeyError when it does not exist."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (recursive), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def download_file(self, key: str, path: str | os.PathLike) -> None: ...

    @abstractmethod
    def upload_file(self, path: str | os.PathLike, key: str) -> None: ...

    @abstractmethod
    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create the object only if no object has ``key``; True when this call created it. The
        check and the create are one atomic step (for leases)."""

    @abstractmethod
    def stat(self, key: str) -> ObjectStat | None:
        """Size and version tag of an object, or None when it does not exist."""

    def abort_incomplete_uploads(self, key: str) -> list[str]:
        """Abort unfinished multipart uploads to ``key`` (S3); returns their ids. Nothing elsewhere."""
        return []

    def local_path(self, key: str) -> Path | None:
        """A path on this machine holding the object, for readers that seek; None when remote."""
        return None

    def get_json(self, key: str):
        return json.loads(self.get_bytes(key))

    def put_json(self, key: str, value) -> None:
        self.put_bytes(key, json.dumps(value, indent=2, sort_keys=True).encode())

    def delete_prefix(self, prefix: str) -> None:
        for key in self.list(prefix):
            self.delete(key)
