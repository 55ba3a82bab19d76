"""Connecting to Ray: the cluster at RAY_ADDRESS, or a local Ray started quietly."""

from __future__ import annotations

import os

from vidcolor.errors import RunFailedError


def ensure_ray(min_cpus: float = 1) -> None:
    """Connect once per process. Call it from the main thread (Prefect runs tasks in threads).
    ``min_cpus``: the CPUs the colorizer actors will hold."""
    import ray

    if ray.is_initialized():
        return
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError) as e:
            raise RunFailedError("RAY_ADDRESS", f"cannot connect to the Ray cluster at {address} ({type(e).__name__})") from None
    else:
        preload_tcmalloc()
        # the actors' CPUs on top of every core: split and stitch tasks (CPU work) can then run on
        # all cores while the actors infer, instead of waiting for an actor to finish
        cores = os.cpu_count() or 1
        ray.init(num_cpus=cores + max(1, int(min_cpus + 0.999)), **quiet)


def preload_tcmalloc() -> None:
    """Local Ray's workers inherit this process's environment: where torch runs the network on a
    CPU, give them tcmalloc, which made torch's inference up to 2.7x faster than glibc malloc here
    (set VIDCOLOR_TCMALLOC=0 to opt out). Not where OpenVINO runs it: OpenVINO aborts under it."""
    from vidcolor.models.runtime_choice import will_run_openvino

    if os.environ.get("VIDCOLOR_TCMALLOC", "1") == "0" or "LD_PRELOAD" in os.environ:
        return
    if will_run_openvino():
        return
    for lib_dir in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"):
        lib = os.path.join(lib_dir, "libtcmalloc_minimal.so.4")
        if os.path.exists(lib):
            os.environ["LD_PRELOAD"] = lib
            return
