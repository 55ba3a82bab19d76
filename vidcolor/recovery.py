"""What one invocation does before it touches a run, and after: take the run's and the output's
leases, close the invocations a kill left open, and clean what they left behind.

Everything here runs under the leases, so whatever partial file, temp folder or unfinished upload
of this run and this output exists belongs to an invocation that is gone.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import socket
import tempfile
from pathlib import Path

from vidcolor import lease
from vidcolor.atomic import PARTIAL_OUTPUT_TAG
from vidcolor.job import Job
from vidcolor.state import RunRecord
from vidcolor.store import ObjectStore, bucket_store, is_s3_uri, split_s3_uri

def run_lease_prefix(job: Job) -> str:
    return f"{job.layout.root}/lease"


def output_lease_prefix(job: Job) -> str:
    """One lease per output, in the store: an s3:// URI as it is, a local path with its host."""
    out = job.output_uri if is_s3_uri(job.output_uri) else f"{socket.gethostname()}:{os.path.realpath(job.output_uri)}"
    return f"leases/output-{hashlib.sha256(out.encode()).hexdigest()[:24]}"


def _leases(job: Job) -> list[tuple[str, str]]:
    # Always the run first, then the output: one order, so two invocations never wait on each other.
    return [(run_lease_prefix(job), f"run {job.run_id}"), (output_lease_prefix(job), f"output {job.output_uri}")]


def hold_leases(store: ObjectStore, job: Job) -> None:
    for prefix, name in _leases(job):
        lease.hold(store, prefix, name)


def check_leases(store: ObjectStore, job: Job) -> None:
    for prefix, _ in _leases(job):
        lease.check(store, prefix)


def holds_run_lease(store: ObjectStore, job: Job) -> bool:
    held = lease.held(store, run_lease_prefix(job))
    return held is not None and not held.lost


def release_leases(store: ObjectStore, job: Job) -> None:
    for prefix, _ in reversed(_leases(job)):
        with contextlib.suppress(Exception):  # an unreleased lease expires on its own
            lease.release(store, prefix)


def close_killed_invocations(record: RunRecord) -> list[int]:
    """Invocations still open in run.json ended without closing (killed, or lost their machine):
    their status becomes "killed". Returns their pids."""
    killed = []
    for inv in record.invocations:
        if inv.status in (None, "running"):
            inv.status = "killed"
            inv.error = inv.error or "ended without closing its run (killed, or its lease expired)"
            killed.append(inv.pid)
    return killed


def clean_leftovers(store: ObjectStore, job: Job) -> list[str]:
    """Remove what killed invocations of this run and output left: partial outputs beside the
    output, temp folders and files of this run, unfinished atomic writes in a local store,
    unfinished multipart uploads of an S3 output. Returns what was removed."""
    removed = []
    if is_s3_uri(job.output_uri):
        with contextlib.suppress(Exception):
            removed += bucket_store(job.output_uri).abort_incomplete_uploads(split_s3_uri(job.output_uri)[1])
    else:
        out = Path(job.output_uri)
        removed += _remove(glob.glob(glob.escape(str(out.with_name(f".{out.name}.{PARTIAL_OUTPUT_TAG}-"))) + "*"))
    tmp = tempfile.gettempdir()
    # RunLayout.temp_prefix: vidcolor-<kind>-<run id>-...
    removed += _remove(glob.glob(os.path.join(glob.escape(tmp), f"vidcolor-*-{glob.escape(job.run_id)}-*")))
    root = store.local_path(job.layout.root)
    if root is not None and root.is_dir():
        mine = f".tmp-{os.getpid()}-"  # this invocation's own writes in flight (a lease heartbeat)
        removed += _remove(str(p) for p in root.rglob(".*") if ".tmp-" in p.name and mine not in p.name)
    return removed


def _remove(paths) -> list[str]:
    gone = []
    for path in paths:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            gone.append(str(path))
        except FileNotFoundError:
            pass
    return gone
