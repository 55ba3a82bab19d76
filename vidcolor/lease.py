"""Leases on the run-state store: one invocation at a time writes a run, and one writes an output.

A lease is a series of small documents, one per generation, ``<prefix>/<generation>.json``. The
newest generation is the lease. Taking it means creating the next generation with a conditional
create (``If-None-Match: *`` on S3, an atomic no-replace link locally), so of any number of
contenders exactly one wins. The holder renews its document from a heartbeat thread; a document
not renewed by its expiry, or whose holder is a process of this machine that no longer exists, is
stale and is taken over with a line saying so. A holder that finds a newer generation than its own
has lost the lease and stops before it writes anything more (``check``). Releasing writes a
released document in place of the holder's; older generations are removed by the next holder, so
a lease leaves one small file behind.

Clocks: expiry compares the holder's clock with the reader's; keep the TTL (default 60 s) well
above the clock skew between machines. A process of this machine that is gone is detected at once.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from vidcolor import progress
from vidcolor.errors import RunFailedError
from vidcolor.store import ObjectStore

LEASE_FORMAT = 1
_POLL_SECONDS = 1.0


def lease_ttl() -> float:
    """Seconds a lease lives without a heartbeat ($VIDCOLOR_LEASE_TTL, default 60)."""
    return float(os.environ.get("VIDCOLOR_LEASE_TTL", 60))


def lease_wait() -> float:
    """Seconds an invocation waits for a lease another one holds ($VIDCOLOR_LEASE_WAIT, default
    12 h: a second invocation of a run waits for the first, then reuses its work)."""
    return float(os.environ.get("VIDCOLOR_LEASE_WAIT", 12 * 3600))


class LeaseBusyError(RunFailedError):
    """The lease stayed with another invocation for longer than we were to wait."""


class LeaseLostError(RunFailedError):
    """Another invocation took this one's lease (it missed its heartbeats): stop writing."""


@dataclass
class LeaseDoc:
    name: str  # what is leased, for people: "run 3fa9...", "output /films/x.mp4"
    token: str  # this holding, unique
    host: str
    pid: int
    generation: int
    acquired_at: float
    expires_at: float
    released: bool = False
    version: int = LEASE_FORMAT

    @property
    def holder(self) -> str:
        return f"{self.host}:{self.pid}"

    def stale_because(self, now: float) -> str | None:
        """Why this lease may be taken over, or None while its holder may still be at work."""
        if self.released:
            return "released"
        if self.host == socket.gethostname() and not process_exists(self.pid):
            return f"its holder {self.holder} is gone"
        if now > self.expires_at:
            return f"it expired {now - self.expires_at:.0f} s ago"
        return None


def process_exists(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (a zombie does not: an orphan's zombie
    stays where PID 1 reaps no children, as in some containers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = process_stat(pid)
    return stat is None or stat[0] not in ("Z", "X")


def process_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...), or None where
    there is no such file (no /proc, or the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _generation_key(prefix: str, generation: int) -> str:
    return f"{prefix}/{generation:010d}.json"


class Lease:
    """A held lease; renewed by a daemon thread until ``release``."""

    def __init__(self, store: ObjectStore, prefix: str, doc: LeaseDoc, ttl: float):
        self.store, self.prefix, self.doc, self.ttl = store, prefix, doc, ttl
        self.key = _generation_key(prefix, doc.generation)
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, name=f"lease {doc.name}", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                latest = newest(self.store, self.prefix)
                if latest is not None and latest.generation > self.doc.generation:
                    self.lost = f"{latest.holder} took it over"
                    return
                self.doc.expires_at = time.time() + self.ttl
                self.store.put_bytes(self.key, _encode(self.doc))
            except Exception:  # noqa: BLE001 - a store hiccup: the next beat tries again before expiry
                if time.time() > self.doc.expires_at:
                    self.lost = "its heartbeats failed until it expired"
                    return

    def check(self) -> None:
        """Raise LeaseLostError when another invocation holds this lease now."""
        if self.lost:
            raise LeaseLostError(self.doc.name, f"this invocation lost its lease ({self.lost}); stopped "
                                                "without writing more")

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.lost:
            return
        self.doc.released = True
        self.doc.expires_at = time.time()
        self.store.put_bytes(self.key, _encode(self.doc))


def _encode(doc: LeaseDoc) -> bytes:
    return json.dumps(asdict(doc), sort_keys=True).encode()


def newest(store: ObjectStore, prefix: str) -> LeaseDoc | None:
    """The newest generation's document: who holds the lease, or held it last (``released``,
    ``stale_because``; for a status command too). One that cannot be read (damaged) counts as
    released: a lease is a promise of work in progress, never state to trust."""
    keys = store.list(prefix + "/")
    generations = sorted(int(k.rsplit("/", 1)[-1].split(".")[0]) for k in keys if k.endswith(".json")
                         and k.rsplit("/", 1)[-1].split(".")[0].isdigit())
    if not generations:
        return None
    generation = generations[-1]
    try:
        doc = store.get_json(_generation_key(prefix, generation))
        return LeaseDoc(**{k: doc[k] for k in LeaseDoc.__dataclass_fields__ if k in doc})
    except (KeyError, ValueError, TypeError):
        return LeaseDoc(name="", token="", host="", pid=0, generation=generation, acquired_at=0.0,
                        expires_at=0.0, released=True)


def acquire(store: ObjectStore, prefix: str, name: str, wait: float | None = None, ttl: float | None = None) -> Lease:
    """Take the lease at ``prefix``: at once when free, after waiting while another invocation
    holds it (one line says so), by takeover when that holder is gone or expired (one line says
    so). LeaseBusyError after ``wait`` seconds."""
    wait = lease_wait() if wait is None else wait
    ttl = lease_ttl() if ttl is None else ttl
    deadline = time.time() + wait
    token = uuid.uuid4().hex
    announced = False
    while True:
        now = time.time()
        current = newest(store, prefix)
        if current is not None and current.token == token:  # our create went through on a retried request
            return _won(store, prefix, current, ttl)
        why = None if current is None else current.stale_because(now)
        if current is not None and why is None:
            if now >= deadline:
                raise LeaseBusyError(name, f"is held by {current.holder} (since "
                                           f"{time.strftime('%H:%M:%S', time.localtime(current.acquired_at))}, renewed "
                                           f"until {time.strftime('%H:%M:%S', time.localtime(current.expires_at))}); "
                                           f"waited {wait:.0f} s; run again when it is done")
            if not announced:
                progress.notice(f"{name} is held by {current.holder}; waiting for it (up to {wait:.0f} s)")
                announced = True
            time.sleep(min(_POLL_SECONDS, max(0.05, deadline - now)))
            continue
        generation = 1 if current is None else current.generation + 1
        doc = LeaseDoc(name=name, token=token, host=socket.gethostname(), pid=os.getpid(), generation=generation,
                       acquired_at=now, expires_at=now + ttl)
        if store.create_exclusive(_generation_key(prefix, generation), _encode(doc)):
            if why is not None and why != "released":
                progress.notice(f"took over {name} from {current.holder}: {why}")
            return _won(store, prefix, doc, ttl)
        # another contender created that generation first, or ours landed on a retry: look again


def _won(store: ObjectStore, prefix: str, doc: LeaseDoc, ttl: float) -> Lease:
    for key in store.list(prefix + "/"):
        if key != _generation_key(prefix, doc.generation):
            store.delete(key)  # older generations: their holders have released or lost the lease
    return Lease(store, prefix, doc, ttl)


# --- the leases this process holds, by store and prefix (a run's tasks are separate calls) --------

_HELD: dict[tuple[str, str], Lease] = {}
_HELD_LOCK = threading.Lock()


def hold(store: ObjectStore, prefix: str, name: str) -> Lease:
    """Acquire and remember the lease for later ``check`` and ``release`` in this process."""
    lease = acquire(store, prefix, name)
    with _HELD_LOCK:
        _HELD[(store.uri, prefix)] = lease
    return lease


def held(store: ObjectStore, prefix: str) -> Lease | None:
    with _HELD_LOCK:
        return _HELD.get((store.uri, prefix))


def check(store: ObjectStore, prefix: str) -> None:
    """Raise LeaseLostError when this process held the lease at ``prefix`` and lost it. A process
    that never held it (a Ray worker stitching for the driver that does) has nothing to check."""
    lease = held(store, prefix)
    if lease is not None:
        lease.check()


def release(store: ObjectStore, prefix: str) -> None:
    with _HELD_LOCK:
        lease = _HELD.pop((store.uri, prefix), None)
    if lease is not None:
        lease.release()
