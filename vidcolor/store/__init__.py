"""Object storage for run state: a local folder by default, any S3 endpoint for clusters."""

from vidcolor.store.base import ObjectStore, cache_root, default_store_uri, is_s3_uri, open_store, split_s3_uri

__all__ = ["ObjectStore", "open_store", "cache_root", "default_store_uri", "is_s3_uri", "split_s3_uri"]
