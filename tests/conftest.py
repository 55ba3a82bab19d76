"""Shared fixtures: real ffmpeg films, one Ray for the session, one Prefect test harness, and a
real S3 server (moto_server over HTTP on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vidcolor.services import free_port  # noqa: F401 (the tests' port picker)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
VENV_BIN = Path(sys.executable).parent

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Keep every Ray address on loopback (Ray otherwise advertises the machine's interface address).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("TQDM_DISABLE", "1")




@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (absent on this machine)")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory):
    """Keep the default store and caches out of the user's home."""
    home = tmp_path_factory.mktemp("home")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    os.environ.pop("VIDCOLOR_STORE", None)
    os.environ.pop("RAY_ADDRESS", None)
    return home


@pytest.fixture(scope="session")
def s3_server(isolated_home):
    """A real S3 endpoint over HTTP: moto_server in its own process."""
    exe = shutil.which("moto_server", path=str(VENV_BIN)) or shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(env)
    yield {"endpoint": endpoint, "env": env}
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def ray_cluster(s3_server):
    """One local Ray for the whole session (cold start costs ~10 s). Started after the S3
    environment is set so Ray workers inherit it."""
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def pipeline(ray_cluster, prefect_harness):
    """Run the colorize flow in-process on the session's Ray and Prefect."""
    from flows.colorize_film import run_colorize_film
    from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings

    def run(input_uri, output_uri, store, *, model="test:luma-ramp", codec="h264", max_chunk_frames=24,
            overlap_frames=4, workers=2, render_size=128, max_attempts=3, crf=None, palette="", stabilize=True):
        return run_colorize_film(
            str(input_uri), str(output_uri),
            ChromaSettings(model=model, render_size=render_size, max_chunk_frames=max_chunk_frames, overlap_frames=overlap_frames,
                           palette=palette, stabilize=stabilize),
            EncodeSettings(codec=codec, crf=crf),
            ExecutionSettings(workers=workers, max_attempts=max_attempts),
            str(store),
        )

    return run


# Synthetic films: three scenes with hard cuts at known frames, 24000/1001 fps, stereo audio,
# a subtitle track and a title.
SCENES = [30, 41, 35]
CUTS = [30, 71]


@pytest.fixture(scope="session")
def film_mp4(tmp_path_factory) -> Path:
    from vidcolor.media.synth import make_test_film

    path = tmp_path_factory.mktemp("films") / "film.mp4"
    make_test_film(path, SCENES, size=(320, 240), title="A Test Title")
    return path


@pytest.fixture(scope="session")
def film_mkv(tmp_path_factory) -> Path:
    from vidcolor.media.synth import make_test_film

    path = tmp_path_factory.mktemp("films") / "film.mkv"
    make_test_film(path, SCENES, size=(320, 240), title="A Test Title")
    return path


def run_cli(args, env=None, timeout=600, **kw) -> subprocess.CompletedProcess:
    exe = str(VENV_BIN / "vidcolor") if (VENV_BIN / "vidcolor").exists() else "vidcolor"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=full_env, **kw)


def start_cli(args, env=None) -> subprocess.Popen:
    """``vidcolor ARGS`` in the background, in its own process group (so a test can SIGKILL it
    with every process it started), on the embedded default Prefect API."""
    exe = str(VENV_BIN / "vidcolor") if (VENV_BIN / "vidcolor").exists() else "vidcolor"
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PREFECT_API_URL", None)
    return subprocess.Popen([exe, *map(str, args)], env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real Prefect API server (SQLite) on 127.0.0.1, shared by the session's tests."""
    port = free_port()
    home = tmp_path_factory.mktemp("prefect-home")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-services"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("prefect server did not start")
    yield url
    proc.terminate()
    proc.wait(30)
