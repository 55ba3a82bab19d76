"""Resume after SIGKILL, bounded retries, quarantine, dead workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SCENES, VENV_BIN
from media_helpers import video_frame_hashes

from vidcolor.errors import RunFailedError
from vidcolor.state import RunLayout, chunk_is_done
from vidcolor.store import open_store

pytestmark = pytest.mark.slow
TOTAL = sum(SCENES)


def _run_state(store_dir: Path):
    store = open_store(str(store_dir))
    plans = [k for k in store.list("runs") if k.endswith("plan.json")]
    assert len(plans) == 1
    plan = store.get_json(plans[0])
    layout = RunLayout(plan["run_id"])
    return store, layout, plan


def _valid_done(store, layout, plan) -> set[int]:
    return {c["index"] for c in plan["chunks"] if chunk_is_done(store, layout, c["index"], c["ext_end"] - c["ext_start"])}


def test_sigkill_then_same_command_resumes_only_missing_chunks(film_mkv, tmp_path, pipeline):
    store_dir, out = tmp_path / "store", tmp_path / "out.mkv"
    args = [str(VENV_BIN / "vidcolor"), "colorize", str(film_mkv), "-o", str(out), "--store", str(store_dir),
            "--model", "test:slow:0.25", "--workers", "1", "--max-chunk-frames", "12", "--overlap-frames", "3",
            "--render-size", "128", "--codec", "ffv1"]
    env = {**os.environ, "VIDCOLOR_PROGRESS": "1"}
    env.pop("PREFECT_API_URL", None)  # the embedded default: an ephemeral Prefect API
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    done = set()
    while time.time() < deadline:
        if store_dir.exists() and list(store_dir.glob("runs/*/plan.json")):
            store, layout, plan = _run_state(store_dir)
            done = _valid_done(store, layout, plan)
            if len(done) >= 3:
                break
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert len(done) >= 3
    # nothing under the output name, and no partial file left beside it either
    assert not out.exists()
    store, layout, plan = _run_state(store_dir)
    # Ray notices its driver is gone within seconds; a chunk in flight may still land meanwhile.
    done_before, stable_since = _valid_done(store, layout, plan), time.time()
    while time.time() - stable_since < 4 and time.time() < deadline:
        time.sleep(0.5)
        now = _valid_done(store, layout, plan)
        if now != done_before:
            done_before, stable_since = now, time.time()
    all_chunks = {c["index"] for c in plan["chunks"]}
    assert done_before < all_chunks, "the kill came too late to test resume"

    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "colorize" in again.stderr and "frames" in again.stderr  # the progress bars
    run = store.get_json(layout.run_json)
    last = run["invocations"][-1]
    assert last["status"] == "succeeded"
    assert sorted(last["chunks_colorized"]) == sorted(all_chunks - done_before)
    assert set(last["chunks_reused"]) == done_before
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".out.mkv")] == []

    # identical to an uninterrupted run
    clean = tmp_path / "clean.mkv"
    pipeline(film_mkv, clean, tmp_path / "store-clean", model="test:luma-ramp", codec="ffv1",
             max_chunk_frames=12, overlap_frames=3, workers=1)
    assert video_frame_hashes(out) == video_frame_hashes(clean)
    assert len(video_frame_hashes(out)) == TOTAL


def test_failing_chunk_is_quarantined_and_named(film_mp4, tmp_path, pipeline):
    store_dir = tmp_path / "store"
    out = tmp_path / "out.mp4"
    with pytest.raises(RunFailedError) as err:
        pipeline(film_mp4, out, store_dir, model="test:fail-chunk:1", max_attempts=2)
    assert "chunk 1 failed 2 times" in str(err.value)
    assert not out.exists()
    store, layout, plan = _run_state(store_dir)
    run = store.get_json(layout.run_json)
    assert run["status"] == "failed"
    assert list(run["quarantined"]) == ["1"]
    assert "fails chunk 1 on purpose" in run["quarantined"]["1"]
    done = _valid_done(store, layout, plan)
    assert done == {c["index"] for c in plan["chunks"]} - {1}
    # the next run retries only what is missing
    with pytest.raises(RunFailedError):
        pipeline(film_mp4, out, store_dir, model="test:fail-chunk:1", max_attempts=2)
    last = store.get_json(layout.run_json)["invocations"][-1]
    assert last["chunks_colorized"] == []
    assert set(last["chunks_reused"]) == done


def test_transient_failures_are_retried_on_another_actor(film_mp4, tmp_path, pipeline):
    seen = tmp_path / "seen"
    out = tmp_path / "out.mp4"
    pipeline(film_mp4, out, tmp_path / "store", model=f"test:flaky:{seen}", workers=2)
    assert out.exists()
    store, layout, plan = _run_state(tmp_path / "store")
    # every chunk failed once, then succeeded: all marked done, none quarantined
    assert len(list(seen.iterdir())) == len(plan["chunks"])
    assert _valid_done(store, layout, plan) == {c["index"] for c in plan["chunks"]}
    workers = {store.get_json(layout.chunk(c["index"], "done.json"))["worker"] for c in plan["chunks"]}
    assert len(workers) == 2, "chunks should be pulled by both actors"


def test_dead_worker_is_replaced(film_mp4, tmp_path, pipeline):
    out = tmp_path / "out.mp4"
    pipeline(film_mp4, out, tmp_path / "store", model=f"test:die-once:{tmp_path / 'seen'}", workers=1)
    assert out.exists()
    store, layout, plan = _run_state(tmp_path / "store")
    assert store.get_json(layout.run_json)["status"] == "succeeded"


def test_gpus_requested_on_a_cluster_without_gpus(film_mp4, tmp_path, ray_cluster, prefect_harness):
    from flows.colorize_film import run_colorize_film
    from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings

    with pytest.raises(RunFailedError, match="GPU"):
        run_colorize_film(str(film_mp4), str(tmp_path / "o.mp4"), ChromaSettings(model="test:luma-ramp"),
                          EncodeSettings(), ExecutionSettings(gpus_per_worker=1.0), str(tmp_path / "store"))
    assert not (tmp_path / "o.mp4").exists()


def test_store_not_visible_to_the_actors_stops_the_run_with_one_reason(tmp_path, ray_cluster):
    """What an actor on another node sees when the store is a folder on the driver's disk: no
    run there. The pool stops at once with that reason instead of retrying every chunk."""
    from vidcolor.executor.ray_pool import ActorSpec, ChunkTask, colorize_chunks_on_actors
    from vidcolor.plan import Chunk

    done = []
    empty_store = tmp_path / "store-on-another-disk"
    empty_store.mkdir()
    with pytest.raises(RunFailedError, match=r"run abc is not visible from Ray node .*use an s3:// store"):
        colorize_chunks_on_actors([Chunk(0, 0, 0, 10, 0, 10), Chunk(1, 0, 10, 20, 10, 20)],
                                  ActorSpec("test:luma-ramp", batch_size=8),
                                  lambda c: ChunkTask(str(empty_store), "abc", False, c),
                                  workers=2, gpus_per_worker=0, cpus_per_worker=0.5, max_attempts=3,
                                  on_chunk_done=lambda c, r: done.append(c.index))
    assert done == [] and list(empty_store.iterdir()) == []


def test_python_is_the_venv():
    assert Path(sys.executable).parent == VENV_BIN


def test_gpu_scheduling_on_a_ray_cluster_via_ray_address(film_mp4, tmp_path):
    """A real multi-process Ray cluster whose node declares one GPU: two actors with 0.5 GPU each
    share it. (No CUDA here, so the model itself runs on the CPU; scheduling is what is tested.)"""
    from conftest import VENV_BIN, free_port, run_cli

    import tempfile

    port = free_port()
    ray_tmp = tempfile.mkdtemp(prefix="vc-ray-", dir="/tmp")  # short: Ray's unix socket paths are length-limited
    # A throwaway test cluster on loopback: no auth token (the CLI below connects the same way).
    ray_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    # --block keeps the head in this process group, so stopping it never touches other Ray clusters
    head = subprocess.Popen([str(VENV_BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                             "--port", str(port), "--num-cpus", "2", "--num-gpus", "1", "--include-dashboard", "false",
                             "--disable-usage-stats", "--temp-dir", ray_tmp],
                            env=ray_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not list(Path(ray_tmp).glob("session_*/logs/raylet.out")) and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2)
        out = tmp_path / "out.mp4"
        result = run_cli(["colorize", film_mp4, "-o", out, "--store", tmp_path / "store", "--model", "test:luma-ramp",
                          "--workers", "2", "--gpus-per-worker", "0.5", "--render-size", "128", "--max-chunk-frames", "24"],
                         env={"RAY_ADDRESS": f"127.0.0.1:{port}", "RAY_AUTH_MODE": "disabled"}, timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]
        store, layout, plan = _run_state(tmp_path / "store")
        workers = {store.get_json(layout.chunk(c["index"], "done.json"))["worker"] for c in plan["chunks"]}
        assert len(workers) == 2 and all(w.endswith(":gpus=0") for w in workers), workers
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
