"""The Ray actor that holds a model, and the pull-based pool that feeds it chunks.

Each actor loads the model once. Actors pull the next chunk as soon as they have room (two in
flight each, so one chunk's download and upload overlap the other's inference), not a fixed
round-robin. A chunk that fails is retried on another actor; a dead actor is replaced. After
``max_attempts`` failures a chunk is quarantined and the rest of the film carries on.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable

import ray

from vidcolor.errors import RunFailedError
from vidcolor.plan import Chunk, chunk_from_dict, chunk_to_dict

PIPELINE_DEPTH = 2


@ray.remote(max_concurrency=PIPELINE_DEPTH)
class ColorizerActor:
    def __init__(self, model_spec: str, store_uri: str, run_id: str, full_range: bool, batch_size: int, threads: int,
                 palette: str = "", palette_strength: float = 1.0, temporal_attention: bool = True,
                 stabilize_strength: float = 0.0):
        import torch

        from vidcolor.colorizers import load_colorizer
        from vidcolor.runstate import RunLayout
        from vidcolor.store import open_store

        torch.set_num_threads(max(1, threads))
        device = "cuda" if torch.cuda.is_available() and ray.get_gpu_ids() else "cpu"
        from vidcolor.stabilize import StabilizerParams

        self.colorizer = load_colorizer(model_spec, device=device, palette=palette, palette_strength=palette_strength)
        self.colorizer.set_temporal_attention(temporal_attention)
        self.stabilizer = StabilizerParams(strength=stabilize_strength) if stabilize_strength > 0 else None
        self.store = open_store(store_uri)
        self.layout = RunLayout(run_id)
        # e.g. a local store folder on the driver's disk while this actor runs on another node
        self.store_problem = None if self.store.exists(self.layout.plan) else (
            f"{store_uri}: run {run_id} is not visible from Ray node {socket.gethostname()}; every node "
            "must see the store (use an s3:// store, or a folder shared by all nodes)")
        self.full_range = full_range
        self.batch_size = batch_size or self.colorizer.preferred_batch_size()
        self.inference_lock = threading.Lock()  # one inference at a time; I/O of the other overlaps
        gpus = ",".join(str(g) for g in ray.get_gpu_ids())
        self.name = f"{socket.gethostname()}:{os.getpid()}:{device}" + (f":gpus={gpus}" if gpus else "")

    def check_store(self) -> str | None:
        """None when this actor sees the run in the store, else why not (one line)."""
        return self.store_problem

    def colorize(self, chunk: dict) -> dict:
        from vidcolor.stages.colorize import colorize_chunk

        if self.store_problem:
            raise RuntimeError(self.store_problem)
        return colorize_chunk(
            self.store, self.layout, chunk_from_dict(chunk), self.colorizer, self.full_range,
            batch_size=self.batch_size, inference_lock=self.inference_lock, worker=self.name,
            stabilizer=self.stabilizer,
        )


def ensure_ray(min_cpus: float = 1) -> None:
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
        _preload_tcmalloc()
        ray.init(num_cpus=max(os.cpu_count() or 1, int(min_cpus + 0.999)), **quiet)


def _preload_tcmalloc() -> None:
    """Local Ray's workers inherit this process's environment: give them tcmalloc, which made CPU
    inference up to 2.7x faster than glibc malloc here (set VIDCOLOR_TCMALLOC=0 to opt out)."""
    if os.environ.get("VIDCOLOR_TCMALLOC", "1") == "0" or "LD_PRELOAD" in os.environ:
        return
    for lib_dir in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"):
        lib = os.path.join(lib_dir, "libtcmalloc_minimal.so.4")
        if os.path.exists(lib):
            os.environ["LD_PRELOAD"] = lib
            return


def colorize_chunks_on_actors(
    todo: list[Chunk],
    *,
    model_spec: str,
    store_uri: str,
    run_id: str,
    full_range: bool,
    workers: int,
    gpus_per_worker: float,
    cpus_per_worker: float,
    batch_size: int,
    max_attempts: int,
    on_chunk_done: Callable[[Chunk, dict], None],
    palette: str = "",
    palette_strength: float = 1.0,
    temporal_attention: bool = True,
    stabilize_strength: float = 0.0,
) -> dict[int, str]:
    """Colorize ``todo``; returns quarantined chunks {index: last error}. Never raises for a chunk."""
    if not todo:
        return {}
    ensure_ray(workers * cpus_per_worker)
    if gpus_per_worker > 0:
        have = ray.cluster_resources().get("GPU", 0)
        if have < gpus_per_worker:
            raise RunFailedError("--gpus-per-worker", f"asks for {gpus_per_worker} GPU per worker but the Ray cluster has {have:g} GPUs")
    options = {"num_cpus": cpus_per_worker, "num_gpus": gpus_per_worker}
    threads = max(1, int(cpus_per_worker))

    def new_actor():
        return ColorizerActor.options(**options).remote(model_spec, store_uri, run_id, full_range, batch_size, threads,
                                                           palette, palette_strength, temporal_attention,
                                                           stabilize_strength)

    actors = {k: new_actor() for k in range(min(workers, len(todo)))}
    next_id = len(actors)
    _fail_fast_if_store_not_visible(list(actors.values()))
    queue = deque(todo)
    attempts: Counter[int] = Counter()
    failed_on: dict[int, set[int]] = defaultdict(set)
    last_error: dict[int, str] = {}
    quarantined: dict[int, str] = {}
    inflight: dict = {}
    load: Counter[int] = Counter()

    def pick(actor_id: int) -> Chunk | None:
        # Prefer a chunk this actor has not failed; take any only if no other actor is alive.
        for c in queue:
            if actor_id not in failed_on[c.index]:
                queue.remove(c)
                return c
        if len(actors) == 1 and queue:
            return queue.popleft()
        return None

    def fail(chunk: Chunk, actor_id: int, error: str) -> None:
        attempts[chunk.index] += 1
        failed_on[chunk.index].add(actor_id)
        last_error[chunk.index] = error
        if attempts[chunk.index] >= max_attempts:
            quarantined[chunk.index] = error
        else:
            queue.appendleft(chunk)

    while queue or inflight:
        for actor_id, actor in list(actors.items()):
            while load[actor_id] < PIPELINE_DEPTH:
                chunk = pick(actor_id)
                if chunk is None:
                    break
                inflight[actor.colorize.remote(chunk_to_dict(chunk))] = (actor_id, chunk)
                load[actor_id] += 1
        if not inflight:
            # Every queued chunk has failed on every live actor: give it one more actor.
            actors[next_id] = new_actor()
            next_id += 1
            continue
        ready, _ = ray.wait(list(inflight), num_returns=1)
        ref = ready[0]
        actor_id, chunk = inflight.pop(ref)
        load[actor_id] -= 1
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            fail(chunk, actor_id, f"worker died: {_short(e)}")
            if actor_id in actors:  # replace it once, whichever of its chunks reports first
                ray.kill(actors.pop(actor_id), no_restart=True)
                actors[next_id] = new_actor()
                next_id += 1
            continue
        except ray.exceptions.RayTaskError as e:
            fail(chunk, actor_id, _short(e))
            continue
        on_chunk_done(chunk, result)
    for actor in actors.values():
        ray.kill(actor, no_restart=True)
    return quarantined


def _fail_fast_if_store_not_visible(actors: list) -> None:
    """Wait for the actors to start; if one cannot see the store, stop the run with that one line
    (a chunk retry would fail the same way on every attempt). Other start-up failures are left to
    the pool, which retries and replaces actors."""
    for actor in actors:
        try:
            problem = ray.get(actor.check_store.remote())
        except ray.exceptions.RayActorError:
            continue
        if problem:
            for other in actors:
                ray.kill(other, no_restart=True)
            raise RunFailedError(None, problem)


def _short(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e
    text = f"{type(cause).__name__}: {cause}"
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(cause).__name__)[:300]


