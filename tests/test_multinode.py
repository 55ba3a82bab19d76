"""A real multi-node Ray cluster on one machine (a head plus a worker node that declares one GPU),
a `prefect server start` server and S3 over HTTP on 127.0.0.1: an archive batch of three films with
different priorities survives the loss of its GPU node (a spot machine gone; a replacement joins)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import VENV_BIN, free_port, run_cli

pytestmark = pytest.mark.slow
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}  # a throwaway cluster on loopback


def start_node(args: list[str], temp_dir: str | None = None) -> subprocess.Popen:
    # --block keeps each node in its own process group, so killing it touches nothing else
    cmd = [str(VENV_BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--disable-usage-stats", *args]
    if temp_dir:
        cmd += ["--temp-dir", temp_dir]
    return subprocess.Popen(cmd, env={**os.environ, **RAY_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    try:
        os.killpg(proc.pid, sig)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for_gpus(address: str, gpus: float, timeout: float = 240) -> None:
    """Until the cluster reports ``gpus`` GPUs (a node joining takes a while on a busy machine)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = subprocess.run([str(VENV_BIN / "ray"), "status", "--address", address], env={**os.environ, **RAY_ENV},
                                capture_output=True, text=True, timeout=120)
        if f"/{gpus:.1f} GPU" in status.stdout:
            return
        time.sleep(2)
    pytest.fail(f"the Ray cluster at {address} never reported {gpus} GPU")


def test_batch_on_two_nodes_survives_losing_the_gpu_node(film_mp4, tmp_path, s3_server, prefect_server):
    import boto3

    from vidcolor.media.synth import make_test_film

    s3 = boto3.client("s3", endpoint_url=s3_server["endpoint"])
    for bucket in ("mn-in", "mn-out", "mn-state"):
        s3.create_bucket(Bucket=bucket)
    for name, scenes in (("low", [40, 30]), ("mid", [50]), ("high", [36, 30])):
        make_test_film(tmp_path / f"{name}.mp4", scenes, size=(160, 120))
        s3.upload_file(str(tmp_path / f"{name}.mp4"), "mn-in", f"reels/{name}.mp4")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("input,priority\ns3://mn-in/reels/low.mp4,0\ns3://mn-in/reels/mid.mp4,1\ns3://mn-in/reels/high.mp4,2\n")

    port = free_port()
    address = f"127.0.0.1:{port}"
    ray_tmp = tempfile.mkdtemp(prefix="vc-mn-", dir="/tmp")  # short: Ray's socket paths are length-limited
    head = start_node(["--head", "--port", str(port), "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false"], ray_tmp)
    nodes = [head]
    try:
        time.sleep(3)
        gpu_node = start_node(["--address", address, "--num-cpus", "2", "--num-gpus", "1"])
        nodes.append(gpu_node)
        wait_for_gpus(address, 1)
        env = {"RAY_ADDRESS": address, "PREFECT_API_URL": prefect_server, **RAY_ENV}
        args = ["batch", manifest, "-o", "s3://mn-out/colour", "--store", "s3://mn-state/vidcolor",
                "--model", "test:slow:0.3", "--render-size", "64", "--max-chunk-frames", "12", "--overlap-frames", "2",
                "--workers", "2", "--gpus-per-worker", "0.5", "--films-in-flight", "3", "--json"]
        exe = str(VENV_BIN / "vidcolor")
        batch = subprocess.Popen([exe, *map(str, args)], env={**os.environ, **env}, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        # lose the GPU node once some chunks are done, then a replacement joins (a spot machine)
        deadline = time.time() + 300
        while time.time() < deadline and batch.poll() is None:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mn-state", Prefix="vidcolor/runs/").get("Contents", [])]
            if sum(k.endswith("done.json") for k in keys) >= 3:
                break
            time.sleep(0.5)
        assert batch.poll() is None, "the batch ended before the node could be killed"
        stop(gpu_node, signal.SIGKILL)
        nodes.append(start_node(["--address", address, "--num-cpus", "2", "--num-gpus", "1"]))
        stdout, stderr = batch.communicate(timeout=600)
        assert batch.returncode == 0, stderr[-3000:]
        summary = json.loads(stdout)
        rows = {Path(r["input"]).stem: r for r in summary["films"]}
        assert {k: r["status"] for k, r in rows.items()} == {"low": "succeeded", "mid": "succeeded", "high": "succeeded"}
        assert {k: r["frames"] for k, r in rows.items()} == {"low": 70, "mid": 50, "high": 66}
        for name in rows:  # valid outputs with every frame
            local = tmp_path / f"{name}-out.mp4"
            s3.download_file("mn-out", f"colour/{name}-colour.mp4", str(local))
            count = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                    "stream=nb_read_frames", "-of", "csv=p=0", str(local)], capture_output=True, text=True)
            assert int(count.stdout.strip()) == rows[name]["frames"]
        report = tmp_path / "report.parquet"
        s3.download_file("mn-out", "colour/vidcolor-report.parquet", str(report))
        import pyarrow.parquet as pq

        assert sorted(pq.read_table(report).column("status").to_pylist()) == ["succeeded"] * 3

        again = run_cli(args, env=env, timeout=300)  # the same batch again: nothing to do
        assert again.returncode == 0, again.stderr[-3000:]
        assert [r["status"] for r in json.loads(again.stdout)["films"]] == ["skipped"] * 3
    finally:
        for node in reversed(nodes):
            stop(node)
