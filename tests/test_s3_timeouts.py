"""The S3 client gives up on a stalled endpoint instead of hanging, after bounded retries."""

from __future__ import annotations

import socket
import threading

import pytest

from vidcolor.errors import BadInputError
from vidcolor.store import s3


@pytest.fixture
def fresh_client():
    s3.s3_client.cache_clear()
    yield
    s3.s3_client.cache_clear()


def test_client_has_connect_and_read_timeouts_and_retries(fresh_client, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    config = s3.s3_client().meta.config
    assert config.connect_timeout == s3._CONNECT_TIMEOUT_S <= 30
    assert config.read_timeout == s3._READ_TIMEOUT_S <= 120
    assert config.retries == {"total_max_attempts": s3._TOTAL_ATTEMPTS, "mode": "standard"}


def test_stalled_endpoint_times_out_after_retries(fresh_client, monkeypatch):
    """A server that accepts and never answers: one clear error after TOTAL_ATTEMPTS tries."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_stall():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)  # keep it open, never reply

    thread = threading.Thread(target=accept_and_stall, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setattr(s3, "_READ_TIMEOUT_S", 0.3)
    monkeypatch.setattr(s3, "_TOTAL_ATTEMPTS", 2)
    try:
        with pytest.raises(BadInputError, match="cannot reach the S3 endpoint"):
            s3.check_bucket("s3://stalled-bucket/store")
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()
    assert len(accepted) == 2, f"expected 2 attempts (1 retry), the server saw {len(accepted)}"


def test_body_that_stalls_half_way_is_read_again(fresh_client, s3_server, monkeypatch):
    """GetObject's headers come, then half the body and silence: the read times out and the object
    is fetched again, whole. A stalled request, by contrast, is botocore's to retry (test above)."""
    import boto3
    from s3_fault_proxy import FaultProxy

    from vidcolor.store import open_store

    boto3.client("s3").create_bucket(Bucket="stalls")
    store = open_store("s3://stalls/p")
    store.put_bytes("k.bin", b"0123456789" * 1000)
    monkeypatch.setattr(s3, "_READ_TIMEOUT_S", 0.5)
    with FaultProxy(s3_server["endpoint"], rate=1.0, kinds=("stall-body",), limit=2,
                    stall_seconds=3.0) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        s3.s3_client.cache_clear()
        assert store.get_bytes("k.bin") == b"0123456789" * 1000
    assert proxy.counts["stall-body"] == 2
