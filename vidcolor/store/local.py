"""A folder on local disk as an object store (the embedded default)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vidcolor.atomic import atomic_path, temp_name_for
from vidcolor.store.base import ObjectStat, ObjectStore


class LocalFolderStore(ObjectStore):
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents and p != self.root:
            raise ValueError(f"key escapes the store: {key!r}")
        return p

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def _atomic_write(self, key: str, writer) -> None:
        with atomic_path(self._path(key), fsync=True) as tmp, open(tmp, "wb") as f:
            writer(f)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic_write(key, lambda f: f.write(data))

    def create_exclusive(self, key: str, data: bytes) -> bool:
        # The whole content goes to a temp name first, then link() gives it the key unless the key
        # exists (atomic, like O_EXCL, but a reader never sees a half-written file).
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name_for(dest)
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, dest)
            except FileExistsError:
                return False
            return True
        finally:
            with _suppress():
                tmp.unlink()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _, files in os.walk(base):
            for name in files:
                if name.startswith("."):
                    continue  # an unfinished atomic write (keys never start with a dot)
                keys.append(str(Path(dirpath, name).relative_to(self.root)).replace(os.sep, "/"))
        return sorted(keys)

    def delete(self, key: str) -> None:
        with _suppress():
            self._path(key).unlink()

    def download_file(self, key: str, path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise KeyError(key)
        shutil.copyfile(src, path)

    def upload_file(self, path, key: str) -> None:
        with open(path, "rb") as src:
            self._atomic_write(key, lambda f: shutil.copyfileobj(src, f, 8 << 20))

    def stat(self, key: str) -> ObjectStat | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return ObjectStat(st.st_size, f"{st.st_mtime_ns:x}-{st.st_size:x}")

    def local_path(self, key: str) -> Path:
        return self._path(key)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)
