"""SIGKILL at five points of a run (vidcolor.failpoints freezes the process exactly there): the same
job run again takes over the dead run's leases, cleans what it left, and writes a film whose
every frame (framemd5) equals an uninterrupted run's. Nothing appears under the output name before
completion and nothing is left behind after the rerun."""

from __future__ import annotations

import glob
import json
import os
import signal
import tempfile
import time

import pytest
from conftest import SCENES, start_cli
from media_helpers import video_frame_hashes

pytestmark = pytest.mark.slow
ARGS = ["--model", "test:luma-ramp", "--workers", "1", "--codec", "ffv1", "--max-chunk-frames", "12",
        "--overlap-frames", "3", "--render-size", "128"]


CLEAN = dict(model="test:luma-ramp", codec="ffv1", max_chunk_frames=12, overlap_frames=3, workers=1, render_size=128)


@pytest.fixture(scope="module")
def clean_hashes(film_mkv, tmp_path_factory, pipeline):
    out = tmp_path_factory.mktemp("clean") / "clean.mkv"
    pipeline(film_mkv, out, out.parent / "store", **CLEAN)
    hashes = video_frame_hashes(out)
    assert len(hashes) == sum(SCENES)
    return hashes


@pytest.mark.parametrize("point", ["split", "colorize", "stitch", "mux", "s3-upload"])
def test_sigkill_at_a_point_then_rerun_gives_the_same_film(point, film_mkv, tmp_path, clean_hashes, request, pipeline,
                                                           capfd):
    store_dir, paused = tmp_path / "store", tmp_path / "paused"
    if point == "s3-upload":
        request.getfixturevalue("s3_server")
        import boto3

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="outputs")
        output = "s3://outputs/films/out.mkv"
    else:
        output = str(tmp_path / "out" / "out.mkv")
        os.makedirs(tmp_path / "out")
    args = ["colorize", film_mkv, "-o", output, "--store", store_dir, *ARGS]

    proc = start_cli(args, env={"VIDCOLOR_FAILPOINT": point, "VIDCOLOR_FAILPOINT_FILE": str(paused)})
    deadline = time.time() + 300
    while not paused.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, f"never reached {point}"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)

    # nothing under the output name
    if point == "s3-upload":
        assert s3.list_objects_v2(Bucket="outputs").get("KeyCount", 0) == 0
    else:
        assert not os.path.exists(output)
    [run_dir] = list((store_dir / "runs").iterdir())
    run_id = run_dir.name
    if point == "mux":  # what the kill left: the partial film beside the output, the temp folder
        assert glob.glob(str(tmp_path / "out" / ".out.mkv.vidcolor-partial-*"))
        assert glob.glob(os.path.join(tempfile.gettempdir(), f"vidcolor-final-{run_id}-*"))

    # the same job again, in this process (the session's Ray and Prefect: no second start-up to pay)
    capfd.readouterr()
    pipeline(film_mkv, output, store_dir, **CLEAN)
    err = capfd.readouterr().err
    assert f"took over run {run_id} from" in err and "is gone" in err

    if point == "s3-upload":
        local = tmp_path / "down.mkv"
        s3.download_file("outputs", "films/out.mkv", str(local))
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="outputs")["Contents"]] == ["films/out.mkv"]
        assert s3.list_multipart_uploads(Bucket="outputs").get("Uploads", []) == []
    else:
        local = output
        assert os.listdir(tmp_path / "out") == ["out.mkv"]
    assert video_frame_hashes(local) == clean_hashes

    # nothing left behind: temp folders and files of the run, store temp files; leases released
    assert glob.glob(os.path.join(tempfile.gettempdir(), f"vidcolor-*-{run_id}-*")) == []
    assert [p for p in store_dir.rglob(".*")] == []
    leases = [json.loads(p.read_text()) for p in store_dir.rglob("*.json") if p.parent.name == "lease"
              or p.parent.parent.name == "leases"]
    assert len(leases) == 2 and all(doc["released"] for doc in leases)
    invocations = json.loads((run_dir / "run.json").read_text())["invocations"]
    assert [inv["status"] for inv in invocations] == ["killed", "succeeded"]
