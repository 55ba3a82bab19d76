"""S3 through a fault-injecting proxy on 127.0.0.1 (resets before and after S3 handled a request,
503, 500, stalls, bodies cut short, at 10% of requests): the run completes and its film equals an
uninterrupted run's frame for frame (no corrupt object accepted). The same run uses sentinel
credentials, and they appear nowhere: not in stdout/stderr (--verbose, --json), the run state, the
output, Prefect's database or Ray's logs; nor does a failing run print them."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import VENV_BIN
from media_helpers import video_frame_hashes
from s3_fault_proxy import FAULTS, FaultProxy
from test_kill_points import ARGS, clean_hashes  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
KEY_ID = "AKIAVIDCOLORSENTINEL7"
SECRET = "vidcolor/secret+sentinel/4ac9e1f0b7d2"


def _scan(path: Path) -> list[str]:
    """Files under ``path`` holding either sentinel (as bytes, any encoding of the text kept)."""
    hits = []
    for p in [path] if path.is_file() else path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            if KEY_ID.encode() in data or SECRET.encode() in data or SECRET.replace("/", "%2F").encode() in data:
                hits.append(str(p))
    return hits


def test_run_completes_through_s3_faults_and_never_shows_credentials(s3_server, film_mkv, tmp_path, clean_hashes):  # noqa: F811
    import boto3

    s3 = boto3.client("s3")
    for bucket in ("faulty-films", "faulty-state"):
        s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(film_mkv), "faulty-films", "in/film.mkv")
    prefect_home = tmp_path / "prefect"
    ray_tmp = tempfile.mkdtemp(prefix="vcr-", dir="/tmp")  # short: Ray's socket paths are length-limited
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "PREFECT_HOME": str(prefect_home),
           "RAY_TMPDIR": ray_tmp, "VIDCOLOR_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PREFECT_API_URL", None)
    exe = str(VENV_BIN / "vidcolor")
    try:
        with FaultProxy(s3_server["endpoint"], rate=0.1) as proxy:
            env["AWS_ENDPOINT_URL"] = proxy.endpoint
            run = subprocess.run([exe, "colorize", "s3://faulty-films/in/film.mkv", "-o", "s3://faulty-films/out/film.mkv",
                                  "--store", "s3://faulty-state/vc", "--verbose", "--json", *ARGS],
                                 capture_output=True, text=True, timeout=600, env=env)
            failed = subprocess.run([exe, "colorize", "s3://faulty-films/in/nope.mkv", "-o", str(tmp_path / "o.mkv"),
                                     "--store", "s3://faulty-state/vc", "--verbose", *ARGS],
                                    capture_output=True, text=True, timeout=300, env=env)
        assert run.returncode == 0, run.stderr[-3000:]
        assert all(proxy.counts[f] >= 1 for f in FAULTS), proxy.counts
        assert sum(proxy.counts[f] for f in FAULTS) >= 0.05 * sum(proxy.counts.values()), proxy.counts

        local = tmp_path / "down.mkv"
        s3.download_file("faulty-films", "out/film.mkv", str(local))
        assert video_frame_hashes(local) == clean_hashes

        assert failed.returncode == 2 and "nope.mkv" in failed.stderr
        for text in (run.stdout, run.stderr, failed.stdout, failed.stderr):
            assert KEY_ID not in text and SECRET not in text
        state = tmp_path / "state-copy"
        for obj in s3.list_objects_v2(Bucket="faulty-state")["Contents"]:
            dest = state / obj["Key"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file("faulty-state", obj["Key"], str(dest))
        assert len(list(state.rglob("*.json"))) > 5
        scanned = [state, local, prefect_home, Path(ray_tmp), tmp_path / "cache"]
        assert [hit for path in scanned if path.exists() for hit in _scan(path)] == []
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
