"""The auth settings of the deployment files do what they claim with the pinned Ray and Prefect.

A Ray head with the compose stack's Ray environment (RAY_AUTH_MODE from infra/compose.yaml, the
token from a make_secrets.py run) refuses its job API without the token; a Prefect server with
the stack's PREFECT_SERVER_API_AUTH_STRING refuses its API without basic auth and keeps
/api/health open for the healthchecks. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.deploy_helpers import INFRA
from vidcolor.services import free_port

pytestmark = pytest.mark.slow

COMPOSE = INFRA / "compose.yaml"


def _status(url: str, headers: dict | None = None, data: bytes | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def _wait_for(url: str, deadline_s: float, proc: subprocess.Popen) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert proc.poll() is None, f"server exited early ({proc.returncode})"
        try:
            _status(url)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"{url} did not come up in {deadline_s} s")


@pytest.fixture(scope="module")
def stack_secrets(tmp_path_factory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("stack") / ".secrets"
    subprocess.run([sys.executable, str(INFRA / "dev" / "make_secrets.py"), "--dir", str(target)],
                   check=True, capture_output=True, timeout=60)
    values = {}
    for f in target.glob("*.env"):
        values.update(line.split("=", 1) for line in f.read_text().splitlines() if "=" in line)
    return values


def _stop(proc: subprocess.Popen) -> None:
    """End the process group this test started (and only it)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# A driver that starts a local Ray cluster with the dashboard on 127.0.0.1 and keeps it up until
# its stdin closes. ray.init shuts the cluster down when the driver exits.
_RAY_DRIVER = """
import sys, ray
context = ray.init(num_cpus=1, include_dashboard=True, dashboard_host="127.0.0.1",
                   dashboard_port=int(sys.argv[1]), _temp_dir=sys.argv[2])
print("ready", context.dashboard_url, flush=True)
sys.stdin.read()
ray.shutdown()
"""


def test_ray_job_api_requires_the_token(stack_secrets, tmp_path):
    (compose,) = [d for d in yaml.safe_load_all(COMPOSE.read_text()) if d]
    ray_env = {k: str(v) for k, v in compose["x-vidcolor-env"].items() if k.startswith("RAY_")}
    assert ray_env["RAY_AUTH_MODE"] == "token"
    token = stack_secrets["RAY_AUTH_TOKEN"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(ray_env, RAY_AUTH_TOKEN=token, HOME=str(tmp_path))
    port = free_port()
    temp_dir = Path("/tmp") / f"vc-ray-{os.getpid()}-{port}"  # short: Ray's socket paths are length-limited
    proc = subprocess.Popen([sys.executable, "-c", _RAY_DRIVER, str(port), str(temp_dir)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        while line and "ready" not in line:
            line = proc.stdout.readline()
        assert "ready" in line, "the Ray driver did not start"
        dashboard = line.split()[-1]  # where Ray says its dashboard listens (host:port)
        jobs = f"http://{dashboard}/api/jobs/"
        _wait_for(f"http://{dashboard}/api/gcs_healthz", 120, proc)
        assert _status(f"http://{dashboard}/api/gcs_healthz") == 200   # probes need no token
        assert _status(jobs) == 401
        assert _status(jobs, {"Authorization": "Bearer not-the-token"}) == 403
        submit = json.dumps({"entrypoint": "echo pwned"}).encode()
        assert _status(jobs, {"Content-Type": "application/json"}, submit) == 401
        assert _status(jobs, {"Authorization": f"Bearer {token}"}) == 200
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        _stop(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_refuses_to_start_a_node_without_the_token(tmp_path):
    """RAY_AUTH_MODE=token and no token anywhere: `ray start` fails closed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", HOME=str(tmp_path))
    ray_cli = Path(sys.executable).parent / "ray"
    temp_dir = Path("/tmp") / f"vc-ray-none-{os.getpid()}"
    try:
        proc = subprocess.run([str(ray_cli), "start", "--head", f"--port={free_port()}",
                               "--dashboard-host=127.0.0.1", "--num-cpus=0", f"--temp-dir={temp_dir}"],
                              env=env, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert proc.returncode != 0
    assert "token" in (proc.stdout + proc.stderr).lower()


def test_prefect_api_requires_basic_auth(stack_secrets, tmp_path):
    auth = stack_secrets["PREFECT_SERVER_API_AUTH_STRING"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_API_AUTH_STRING=auth,
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_UI_ENABLED="false")
    prefect_cli = Path(sys.executable).parent / "prefect"
    proc = subprocess.Popen([str(prefect_cli), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}/api"
        _wait_for(f"{base}/health", 180, proc)
        assert _status(f"{base}/health") == 200          # the compose/k8s healthchecks need no auth
        flows = f"{base}/flows/filter"
        body, json_header = b"{}", {"Content-Type": "application/json"}
        assert _status(flows, json_header, body) == 401
        wrong = base64.b64encode(b"vidcolor:wrong").decode()
        assert _status(flows, {**json_header, "Authorization": f"Basic {wrong}"}, body) == 401
        right = base64.b64encode(auth.encode()).decode()
        assert _status(flows, {**json_header, "Authorization": f"Basic {right}"}, body) == 200
    finally:
        _stop(proc)
