"""`vidcolor services`: a warm local Ray and Prefect server that later commands use instead of
starting their own, and that stop ends."""

import json
import os
import urllib.request
from pathlib import Path

import pytest

from conftest import run_cli


def _flow_runs(api_url: str) -> int:
    req = urllib.request.Request(f"{api_url}/flow_runs/count", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(json.loads(r.read()))


def test_free_port_is_bindable_and_outside_the_kernels_ephemeral_range():
    import socket

    from vidcolor.services import _ephemeral_range, free_port

    low, high = _ephemeral_range()
    ports = {free_port() for _ in range(20)}
    assert len(ports) > 1  # chosen at random, so two servers started together rarely collide
    for port in ports:
        assert 20000 <= port < low or low <= 21000, (port, low, high)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


@pytest.mark.slow
def test_warm_services_are_used_by_commands_and_stopped(film_mp4, tmp_path):
    # a home without ~/.ray/auth_token, as on a fresh machine: `services start` makes the user's token
    env = {"VIDCOLOR_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}
    env_off = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PREFECT_API_URL")}
    assert "not running" in run_cli(["services", "status"], env=env).stdout
    started = run_cli(["services", "start"], env=env, timeout=300)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        token_file = tmp_path / "home" / ".ray" / "auth_token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32 and token not in started.stdout + started.stderr
        status = json.loads(run_cli(["services", "status", "--json"], env=env).stdout)
        assert status["ray_address"].startswith("127.0.0.1:") and status["prefect_api_url"].startswith("http://127.0.0.1:")
        again = run_cli(["services", "start"], env=env, timeout=60)  # already running: the same ones
        assert json.loads(run_cli(["services", "status", "--json"], env=env).stdout) == status, again.stdout
        drivers_before = len(list(Path(status["ray_temp_dir"]).glob("session_*/logs/python-core-driver-*")))
        runs_before = _flow_runs(status["prefect_api_url"])

        out = tmp_path / "out.mp4"
        result = run_cli(["colorize", film_mp4, "-o", out, "--store", tmp_path / "store", "--model", "test:luma-ramp",
                          "--render-size", "128", "--max-chunk-frames", "24"],
                         env={**{k: v for k, v in env_off.items()}, **env}, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert out.exists()
        # the command's driver joined the warm Ray and its flow run is in the warm Prefect server
        assert len(list(Path(status["ray_temp_dir"]).glob("session_*/logs/python-core-driver-*"))) > drivers_before
        assert _flow_runs(status["prefect_api_url"]) > runs_before
        # and the services outlive the command
        assert json.loads(run_cli(["services", "status", "--json"], env=env).stdout) == status
    finally:
        stopped = run_cli(["services", "stop"], env=env, timeout=120)
    assert "stopped" in stopped.stdout
    assert "not running" in run_cli(["services", "status"], env=env).stdout
    from vidcolor.services import _group_alive

    assert not any(_group_alive(pid) for pid in (status["ray_pid"], status["prefect_pid"]))
    assert not Path(status["ray_temp_dir"]).exists()


_MOVED_SERVER = """
import socket, sys
import prefect  # imported before the server starts: its settings must follow the URL we set
from prefect.settings import get_current_settings
from vidcolor import services
from vidcolor.cli._common import follow_prefect_api_url

taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen(1)
ports = [taken.getsockname()[1], services.free_port()]
services.free_port = lambda: ports.pop(0)
url = services.start_prefect_for_this_process(timeout=90, while_starting=follow_prefect_api_url)
assert not ports, "the server was not moved to the second port"
print(url, get_current_settings().api.url)
"""


def test_own_prefect_server_moves_port_and_prefect_follows():
    """The command's own Prefect server finds its first port taken: it starts on another, and
    Prefect (imported before, when the URL was the first port's) talks to the second."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run([sys.executable, "-c", _MOVED_SERVER], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    url, prefect_url = done.stdout.split()
    assert url == prefect_url and url.startswith("http://127.0.0.1:")
