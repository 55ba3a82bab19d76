"""S3 (AWS, MinIO, Ceph, SeaweedFS, Garage...) as the object store.

Endpoint, region and credentials come from the standard AWS environment and config files
(AWS_ENDPOINT_URL, AWS_PROFILE, AWS_ACCESS_KEY_ID, ...); nothing here logs them.
"""

from __future__ import annotations

import functools
import time

from vidcolor.errors import BadInputError
from vidcolor.store.base import ObjectStat, ObjectStore, split_s3_uri

_MULTIPART_THRESHOLD = 64 << 20
# Set explicitly (botocore's defaults: 60 s to connect, 60 s per read): an unreachable endpoint
# fails in seconds, a stalled read is abandoned and retried. Standard retries back off on
# throttling and 5xx and retry connection resets; each attempt is bounded by the timeouts.
_CONNECT_TIMEOUT_S = 10
_READ_TIMEOUT_S = 60
_TOTAL_ATTEMPTS = 5  # the first try and four retries
_CUT_RESPONSE_ATTEMPTS = 5


@functools.lru_cache(maxsize=None)
def s3_client():
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        config=Config(
            connect_timeout=_CONNECT_TIMEOUT_S,
            read_timeout=_READ_TIMEOUT_S,
            retries={"total_max_attempts": _TOTAL_ATTEMPTS, "mode": "standard"},
            tcp_keepalive=True,
        ),
    )


class _BodyCutShort(Exception):
    """A streaming body broke off in read(): botocore's retries were over before it began."""


def _cut_response_errors() -> tuple[type[BaseException], ...]:
    # Not botocore's ConnectionError or HTTPClientError on the request itself (a stalled endpoint's
    # read timeout, for one): botocore has already retried those _TOTAL_ATTEMPTS times.
    from botocore.exceptions import IncompleteReadError, ResponseStreamingError
    from urllib3.exceptions import HTTPError

    return _BodyCutShort, IncompleteReadError, ResponseStreamingError, HTTPError


def retry_cut_responses(call):
    """Run ``call`` again when its response was cut short after the headers arrived.

    botocore retries a request that fails before its response comes, and reads a plain response's
    body inside those retries. Two cuts escape them:
    - the error body of a streaming call (GetObject's 404, for one) is read outside the retries, and
      a reset there raises urllib3's ProtocolError from inside the call;
    - a streaming body breaks off in read() (a reset, a stalled read).
    Each call here is idempotent, so it is made again, whole."""

    @functools.wraps(call)
    def retrying(*args, **kwargs):
        errors = _cut_response_errors()
        for attempt in range(_CUT_RESPONSE_ATTEMPTS):
            try:
                return call(*args, **kwargs)
            except errors as e:
                if attempt == _CUT_RESPONSE_ATTEMPTS - 1:
                    if isinstance(e, _BodyCutShort) and e.__cause__ is not None:
                        raise e.__cause__ from None
                    raise
                time.sleep(0.2 * 2 ** attempt)
        raise AssertionError("unreachable")

    return retrying


@retry_cut_responses
def _head_bucket(bucket: str) -> None:
    s3_client().head_bucket(Bucket=bucket)


def check_bucket(uri: str) -> None:
    """Raise a one-line BadInputError when the bucket is missing or unreachable."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _ = split_s3_uri(uri)
    if not bucket:
        raise BadInputError(uri, "no bucket in the S3 URI")
    try:
        _head_bucket(bucket)
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise BadInputError(uri, f"bucket {bucket!r} does not exist") from None
        if code in ("403", "AccessDenied"):
            raise BadInputError(uri, f"access to bucket {bucket!r} denied") from None
        raise BadInputError(uri, f"cannot reach bucket {bucket!r} ({code})") from None
    except BotoCoreError as e:
        raise BadInputError(uri, f"cannot reach the S3 endpoint ({type(e).__name__})") from None


def _transfer_config():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=_MULTIPART_THRESHOLD, multipart_chunksize=32 << 20)


class S3Store(ObjectStore):
    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self.bucket, prefix = split_s3_uri(self.uri)
        self.prefix = prefix.strip("/")
        check_bucket(self.uri)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @retry_cut_responses
    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

        try:
            body = s3_client().get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise
        try:
            return body.read()
        except (ReadTimeoutError, ConnectionClosedError) as e:
            raise _BodyCutShort(key) from e

    @retry_cut_responses
    def put_bytes(self, key: str, data: bytes) -> None:
        s3_client().put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    @retry_cut_responses
    def create_exclusive(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            s3_client().put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
            return True
        except ClientError as e:
            # 412: the key exists; 409: a concurrent conditional write to the key won
            if str(e.response.get("Error", {}).get("Code")) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return False
            raise

    @retry_cut_responses
    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            s3_client().head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    @retry_cut_responses
    def stat(self, key: str) -> ObjectStat | None:
        from botocore.exceptions import ClientError

        try:
            head = s3_client().head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectStat(int(head.get("ContentLength", 0)), head.get("ETag", "").strip('"'))

    @retry_cut_responses
    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys = []
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    @retry_cut_responses
    def delete(self, key: str) -> None:
        s3_client().delete_object(Bucket=self.bucket, Key=self._key(key))

    @retry_cut_responses
    def abort_incomplete_uploads(self, key: str) -> list[str]:
        client, full = s3_client(), self._key(key)
        uploads = client.list_multipart_uploads(Bucket=self.bucket, Prefix=full).get("Uploads", [])
        aborted = []
        for up in uploads:
            if up["Key"] == full:
                client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=up["UploadId"])
                aborted.append(f"s3://{self.bucket}/{full} (upload {up['UploadId']})")
        return aborted

    @retry_cut_responses
    def download_file(self, key: str, path) -> None:
        from botocore.exceptions import ClientError

        try:
            s3_client().download_file(self.bucket, self._key(key), str(path), Config=_transfer_config())
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise KeyError(key) from None
            raise

    @retry_cut_responses
    def upload_file(self, path, key: str) -> None:
        # One PUT or a multipart upload: either way the object appears only when complete.
        from vidcolor.failpoints import failpoint

        s3_client().upload_file(str(path), self.bucket, self._key(key), Config=_transfer_config(),
                                Callback=lambda sent: failpoint("s3-upload"))
