"""Object storage for run state: a local folder by default, any S3 endpoint for clusters."""

from __future__ import annotations

from pathlib import Path

from vidcolor.store.base import ObjectStat, ObjectStore, cache_root, default_store_uri, is_s3_uri, split_s3_uri

__all__ = ["ObjectStat", "ObjectStore", "open_store", "bucket_store", "cache_root", "default_store_uri", "is_s3_uri", "split_s3_uri"]


def open_store(uri: str | None = None) -> ObjectStore:
    """The store at ``uri``: ``s3://bucket[/prefix]`` or a local folder (default: the user's cache)."""
    uri = uri or default_store_uri()
    if is_s3_uri(uri):
        from vidcolor.store.s3 import S3Store

        return S3Store(uri)
    if "://" in uri and not uri.startswith("file://"):
        from vidcolor.errors import BadInputError

        raise BadInputError(uri, "unsupported store URI (use a local folder or s3://bucket/prefix)")
    from vidcolor.store.local import LocalFolderStore

    return LocalFolderStore(Path(uri.removeprefix("file://")).expanduser())


def bucket_store(uri: str) -> ObjectStore:
    """The store of the bucket of an ``s3://bucket/key`` URI, whose keys are object keys. A
    problem with the bucket (missing, denied, unreachable) is one BadInputError naming ``uri``."""
    from vidcolor.errors import BadInputError

    try:
        return open_store(f"s3://{split_s3_uri(uri)[0]}")
    except BadInputError as e:
        raise BadInputError(uri, e.problem) from None
