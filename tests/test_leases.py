"""Leases on the store: conditional create (O_EXCL-like link locally, If-None-Match on S3), one
winner among contenders, waiting, takeover of a stale lease with a line, a lost lease detected."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from vidcolor import lease
from vidcolor.lease import LeaseBusyError, LeaseDoc, LeaseLostError
from vidcolor.store import open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(str(tmp_path / "store"))
    request.getfixturevalue("s3_server")
    import boto3

    bucket = f"leases-{time.time_ns()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return open_store(f"s3://{bucket}/state")


def test_create_exclusive_creates_once(store):
    assert store.create_exclusive("a/x.json", b"one")
    assert not store.create_exclusive("a/x.json", b"two")
    assert store.get_bytes("a/x.json") == b"one"


def test_one_winner_among_contenders_and_the_holder_is_named(store):
    won, busy = [], []

    def contend():
        try:
            won.append(lease.acquire(store, "L", "run abc", wait=0, ttl=30))
        except LeaseBusyError as e:
            busy.append(str(e))

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(busy) == 5
    assert all(m.startswith("run abc: is held by ") and won[0].doc.holder in m and "\n" not in m for m in busy)
    won[0].release()
    again = lease.acquire(store, "L", "run abc", wait=0, ttl=30)
    assert again.doc.generation == won[0].doc.generation + 1
    again.release()
    assert store.list("L/") == ["L/" + f"{again.doc.generation:010d}.json"]  # one small file left


def test_waiter_gets_the_lease_when_released(store, capfd):
    first = lease.acquire(store, "L", "output o.mp4", wait=0, ttl=30)
    threading.Timer(1.0, first.release).start()
    t0 = time.time()
    second = lease.acquire(store, "L", "output o.mp4", wait=30, ttl=30)
    assert time.time() - t0 >= 0.9
    assert "vidcolor: output o.mp4 is held by" in capfd.readouterr().err
    second.release()


def test_expired_lease_is_taken_over_with_a_line_and_its_holder_stops(store, capfd):
    first = lease.acquire(store, "L", "run abc", wait=0, ttl=1.0)
    first._stop.set()  # its heartbeat stops, as in a machine that froze
    first._thread.join()
    time.sleep(1.2)
    second = lease.acquire(store, "L", "run abc", wait=0, ttl=30)
    assert "took over run abc from" in capfd.readouterr().err
    # the first holder notices at its next heartbeat and stops before writing more
    first._stop.clear()
    first._thread = threading.Thread(target=first._heartbeat, daemon=True)
    first._thread.start()
    deadline = time.time() + 5
    while first.lost is None and time.time() < deadline:
        time.sleep(0.05)
    with pytest.raises(LeaseLostError, match="lost its lease"):
        first.check()
    second.release()


def test_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(store, capfd):
    import json
    import socket
    from dataclasses import asdict

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    doc = LeaseDoc(name="run abc", token="t", host=socket.gethostname(), pid=pid, generation=3,
                   acquired_at=time.time(), expires_at=time.time() + 3600)
    store.create_exclusive("L/0000000003.json", json.dumps(asdict(doc)).encode())
    got = lease.acquire(store, "L", "run abc", wait=0, ttl=30)
    assert got.doc.generation == 4
    assert "is gone" in capfd.readouterr().err
    assert store.list("L/") == ["L/0000000004.json"]
    got.release()


def test_heartbeat_keeps_a_lease_alive_past_its_ttl(store):
    held = lease.acquire(store, "L", "run abc", wait=0, ttl=0.8)
    time.sleep(2.0)
    with pytest.raises(LeaseBusyError):
        lease.acquire(store, "L", "run abc", wait=0, ttl=0.8)
    held.check()
    held.release()


# --- two invocations through the real stack ---------------------------------------------------

def _wait_for(predicate, proc, timeout=240):
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def _slow_cli(film, out, store):
    from conftest import start_cli

    return start_cli(["colorize", film, "-o", out, "--store", store, "--model", "test:slow:0.15", "--workers", "1",
                      "--codec", "ffv1", "--max-chunk-frames", "12", "--overlap-frames", "3", "--render-size", "128"])


def _invocations(store_dir, run_id):
    import json

    return json.loads((store_dir / "runs" / run_id / "run.json").read_text())["invocations"]


@pytest.mark.slow
def test_second_run_of_the_same_film_waits_then_reuses_everything(film_mkv, tmp_path, pipeline, capfd):
    from media_helpers import video_frame_hashes

    store_dir = tmp_path / "store"
    first = _slow_cli(film_mkv, tmp_path / "a.mkv", store_dir)
    _wait_for(lambda: list(store_dir.glob("runs/*/chunks/*/done.json")), first)
    second = pipeline(film_mkv, tmp_path / "b.mkv", store_dir, codec="ffv1", max_chunk_frames=12, overlap_frames=3)
    assert first.wait(120) == 0, first.stderr.read()[-3000:]
    assert f"run {second['run_id']} is held by" in capfd.readouterr().err
    a, b = _invocations(store_dir, second["run_id"])
    assert a["status"] == b["status"] == "succeeded"
    assert a["finished_at"] <= b["started_at"]  # one after the other, never both writing run.json
    assert b["chunks_colorized"] == [] and b["chunks_reused"]
    assert video_frame_hashes(tmp_path / "a.mkv") == video_frame_hashes(tmp_path / "b.mkv")


@pytest.mark.slow
def test_two_films_to_one_output_take_turns(film_mkv, tmp_path, pipeline):
    from media_helpers import luma_frame_hashes

    from vidcolor.media.synth import make_test_film

    other = tmp_path / "other.mkv"
    make_test_film(other, [20], size=(160, 120), audio=False, subtitles=False, title=None)
    store_dir, out = tmp_path / "store", tmp_path / "out.mkv"
    first = _slow_cli(film_mkv, out, store_dir)
    _wait_for(lambda: list(store_dir.glob("runs/*/chunks/*/done.json")), first)
    second = pipeline(other, out, store_dir, codec="ffv1", max_chunk_frames=12, overlap_frames=3)
    assert first.wait(120) == 0, first.stderr.read()[-3000:]
    [first_run] = [p.name for p in (store_dir / "runs").iterdir() if p.name != second["run_id"]]
    [a] = _invocations(store_dir, first_run)
    [b] = _invocations(store_dir, second["run_id"])
    assert a["status"] == b["status"] == "succeeded"
    assert a["finished_at"] <= b["started_at"]  # the second waited for the output's lease
    assert luma_frame_hashes(out) == luma_frame_hashes(other)  # one whole film under the name: the last one's
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.mkv")] == []
