"""Create the dev bucket on the local S3-compatible server (idempotent; waits for the server).

Run inside the vidcolor image (boto3 is a project dependency); reads AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket name from VIDCOLOR_STORE (s3://bucket/prefix).
"""

import os
import sys
import time
from urllib.parse import urlparse

import boto3
import botocore.exceptions


def main() -> int:
    store = os.environ.get("VIDCOLOR_STORE", "")
    parsed = urlparse(store)
    if parsed.scheme != "s3" or not parsed.netloc:
        print(f"create_bucket: VIDCOLOR_STORE must be s3://bucket/prefix, got {store!r}", file=sys.stderr)
        return 2
    bucket = parsed.netloc
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    deadline = time.monotonic() + float(os.environ.get("CREATE_BUCKET_TIMEOUT_S", "120"))
    while True:
        try:
            existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
            if bucket not in existing:
                s3.create_bucket(Bucket=bucket)
            print(f"create_bucket: s3://{bucket} ready")
            return 0
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ClientError) as exc:
            if time.monotonic() > deadline:
                print(f"create_bucket: giving up on s3://{bucket}: {exc}", file=sys.stderr)
                return 1
            time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
