"""Warm local services: a Ray head and a Prefect API server kept running between invocations.

Started cold, every ``vidcolor colorize`` spends about 8 of its first 10 seconds starting (and at the
end stopping) a local Ray and an ephemeral Prefect server. ``vidcolor services start`` starts both
once, on loopback, and records them in ``<cache>/services.json``; while they are alive every
command on this machine uses them (as it would with RAY_ADDRESS and PREFECT_API_URL set), and
``vidcolor services stop`` ends them. Nothing here starts on its own: without ``services start``
each command starts and stops its own, as before (and with VIDCOLOR_SERVICES=off it does so even
while they run).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from vidcolor.atomic import atomic_path
from vidcolor.lease import process_exists, process_stat
from vidcolor.store.base import cache_root


@dataclass(frozen=True)
class LocalServices:
    ray_address: str  # host:port of the head's GCS
    prefect_api_url: str
    ray_pid: int  # `ray start --block`: the leader of the head's process group
    prefect_pid: int  # `prefect server start`: the leader of its process group
    ray_temp_dir: str
    cpus: int
    started_at: float
    ray_auth_mode: str = "token"  # a client must name the head's mode (Ray finds the token itself)


def state_path() -> Path:
    return cache_root() / "services.json"


def running() -> LocalServices | None:
    """The recorded services, if both are alive and the Prefect API answers; else None."""
    try:
        services = LocalServices(**json.loads(state_path().read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not (process_exists(services.ray_pid) and process_exists(services.prefect_pid) and _healthy(services.prefect_api_url)):
        return None
    return services


def use_if_running() -> LocalServices | None:
    """Point this process at the warm services (RAY_ADDRESS, PREFECT_API_URL) unless either is
    already set or VIDCOLOR_SERVICES=off; returns them, or None when they are not running or not
    wanted."""
    if os.environ.get("RAY_ADDRESS") or os.environ.get("PREFECT_API_URL"):
        return None
    if os.environ.get("VIDCOLOR_SERVICES", "").lower() in ("off", "0", "false", "no"):
        return None
    services = running()
    if services is not None:
        os.environ["RAY_ADDRESS"] = services.ray_address
        os.environ["PREFECT_API_URL"] = services.prefect_api_url
        os.environ.setdefault("RAY_AUTH_MODE", services.ray_auth_mode)
    return services


def start(cpus: int | None = None, timeout: float = 180) -> LocalServices:
    """Start both (or return the running ones). ``cpus``: Ray's logical CPUs (default: the cores
    plus two, the colorizer actors' share on top of the cores, as a command's own local Ray)."""
    services = running()
    if services is not None:
        return services
    stop()  # whatever half of a previous start is left
    cpus = int(cpus or (os.cpu_count() or 1) + 2)
    logs = cache_root() / "services"
    logs.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    ray_port = free_port()
    prefect_port = free_port()
    while prefect_port == ray_port:
        prefect_port = free_port()
    # short: Ray's unix socket paths are length-limited
    ray_temp = tempfile.mkdtemp(prefix="vidcolor-ray-", dir="/tmp")
    # token auth unless the environment says otherwise: only this user's commands (which read the
    # token from ~/.ray, where `ray start` keeps it) may run code on the head
    auth = os.environ.get("RAY_AUTH_MODE", "token")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": auth}
    if auth == "token":
        _ensure_ray_token(bin_dir, env)
    # --block keeps each in a process group of its own, which stop() ends as a whole
    ray = subprocess.Popen(
        [str(bin_dir / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(ray_port),
         "--num-cpus", str(cpus), "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", ray_temp],
        env=env, stdout=open(logs / "ray.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    prefect = launch_prefect_server(prefect_port, env, open(logs / "prefect.log", "ab"), own_group=True)
    services = LocalServices(f"127.0.0.1:{ray_port}", f"http://127.0.0.1:{prefect_port}/api", ray.pid, prefect.pid,
                             ray_temp, cpus, time.time(), auth)
    _write(services)  # recorded at once, so that stop() finds them even if the wait below fails
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name, proc in (("Ray", ray), ("the Prefect server", prefect)):
            if proc.poll() is not None:
                stop()
                raise RuntimeError(f"{name} exited while starting (exit {proc.returncode}); see {logs}")
        if _ray_ready(ray_temp, ray_port) and _healthy(services.prefect_api_url):
            return services
        time.sleep(0.5)
    stop()
    raise RuntimeError(f"the services did not start within {timeout:.0f} s; see {logs}")


def _ensure_ray_token(bin_dir: Path, env: dict) -> None:
    """`ray start` (unlike a local ray.init) refuses token mode without a token: on a machine that
    has none yet, make the user's own (~/.ray/auth_token, readable by the user alone) with Ray's
    CLI. The CLI prints the token; it goes nowhere."""
    if env.get("RAY_AUTH_TOKEN") or env.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = Path.home() / ".ray" / "auth_token"
    if path.is_file() and path.stat().st_size:
        return
    made = subprocess.run([str(bin_dir / "ray"), "get-auth-token", "--generate"], env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if made.returncode != 0 or not path.is_file():
        raise RuntimeError(f"could not create a Ray auth token at {path} "
                           f"(`ray get-auth-token --generate` exit {made.returncode})")
    path.chmod(0o600)


def launch_prefect_server(port: int, env: dict, log, own_group: bool) -> subprocess.Popen:
    """`prefect server start` on loopback, API only (no UI, no background services): healthy in
    about 2.5 s here, where Prefect's ephemeral server first imports the whole server into the
    calling process (1.4 s of CPU) and then starts it (2.9 s)."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
         "--no-services"],
        env={**env, "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=own_group)


def start_prefect_for_this_process(timeout: float = 90, attempts: int = 3,
                                   while_starting: Callable[[], None] | None = None) -> str:
    """The embedded default's Prefect API: a server for this process alone (in its process group,
    so whatever ends the group ends it too), stopped when the process exits. Sets and returns
    PREFECT_API_URL. A server that exits while starting (its port taken between our choice and its
    bind) is started again on another port. ``while_starting`` runs once PREFECT_API_URL names the
    server being started, each time it is set or unset (the CLI imports Prefect then)."""
    import atexit

    deadline = time.time() + timeout
    for attempt in range(1, attempts + 1):
        port = free_port()
        proc = launch_prefect_server(port, dict(os.environ), subprocess.DEVNULL, own_group=False)
        atexit.register(_stop_process, proc)
        api_url = f"http://127.0.0.1:{port}/api"
        os.environ["PREFECT_API_URL"] = api_url
        if while_starting is not None:
            while_starting()
        while not _healthy(api_url):
            if proc.poll() is not None or time.time() > deadline:
                break
            time.sleep(0.1)
        else:
            return api_url
        _stop_process(proc)
        if time.time() > deadline or attempt == attempts:
            os.environ.pop("PREFECT_API_URL", None)
            if while_starting is not None:
                while_starting()
            raise RuntimeError(f"the local Prefect server did not start (exit {proc.returncode}); "
                               "`prefect server start` shows why")
    raise AssertionError("unreachable")


def _stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop() -> bool:
    """End the recorded services; True if there were any."""
    try:
        services = LocalServices(**json.loads(state_path().read_text()))
    except (OSError, ValueError, TypeError):
        return False
    for pid in (services.prefect_pid, services.ray_pid):
        _end_group(pid)
    shutil.rmtree(services.ray_temp_dir, ignore_errors=True)
    state_path().unlink(missing_ok=True)
    return True


def _write(services: LocalServices) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(asdict(services), indent=2) + "\n")


def _group_alive(pgid: int) -> bool:
    """Some member of process group ``pgid`` still runs (zombies do not count)."""
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in Path("/proc").iterdir():
        fields = process_stat(entry.name) if entry.name.isdigit() else None
        if fields is not None and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _ray_ready(temp_dir: str, port: int) -> bool:
    """The head's raylet is up (its log exists) and its GCS port accepts connections."""
    if not list(Path(temp_dir).glob("session_*/logs/raylet.out")):
        return False
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _end_group(pid: int, grace: float = 20) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.time() + grace
    while time.time() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def free_port() -> int:
    """A loopback port free now, for a server we are about to start on it.

    Taken below the kernel's ephemeral range where there is room: a port the kernel hands out for
    ``bind(0)`` is soon handed out again, and Ray binds many of its own ports that way while it
    starts, so a server started on such a port in parallel with Ray can find it taken (or a test
    can find Ray's gRPC server answering on it). Ray's fixed ports (6379, 8265, 10001, its worker
    range 10002-19999) lie below the range used here.
    """
    low, _ = _ephemeral_range()
    candidates = list(range(20000, low)) if low > 20000 + 1000 else []
    for port in random.sample(candidates, min(64, len(candidates))):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # no room below the ephemeral range (or all taken): the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
