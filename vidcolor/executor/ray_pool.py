"""The Ray actors that hold a model, and the pool that feeds them chunks as the scheduler says.

Each actor loads the model once. Actors pull the next chunk as soon as they have room (two in
flight each, so one chunk's download and upload overlap the other's inference). A chunk that fails
is retried on another actor; a dead actor is replaced. After ``max_attempts`` failures a chunk is
quarantined and the rest of the film carries on.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import ray

from vidcolor.errors import RunFailedError
from vidcolor.executor.ray_runtime import ensure_ray
from vidcolor.executor.scheduler import ChunkScheduler, WorkItem
from vidcolor.plan import Chunk

PIPELINE_DEPTH = 2


@dataclass(frozen=True)
class ActorSpec:
    """What every colorizer actor of one run is built from."""

    model_spec: str
    store_uri: str
    run_id: str
    full_range: bool
    batch_size: int = 0  # 0 = the colorizer's preferred_batch_size()
    palette: str = ""
    palette_strength: float = 1.0


@ray.remote(max_concurrency=PIPELINE_DEPTH)
class ColorizerActor:
    def __init__(self, spec: ActorSpec, threads: int):
        import torch

        from vidcolor.colorizers import load_colorizer
        from vidcolor.state import RunLayout
        from vidcolor.store import open_store

        torch.set_num_threads(max(1, threads))
        device = "cuda" if torch.cuda.is_available() and ray.get_gpu_ids() else "cpu"
        self.colorizer = load_colorizer(spec.model_spec, device=device, palette=spec.palette,
                                        palette_strength=spec.palette_strength)
        self.store = open_store(spec.store_uri)
        self.layout = RunLayout(spec.run_id)
        # e.g. a local store folder on the driver's disk while this actor runs on another node
        self.store_problem = None if self.store.exists(self.layout.plan) else (
            f"{spec.store_uri}: run {spec.run_id} is not visible from Ray node {socket.gethostname()}; every node "
            "must see the store (use an s3:// store, or a folder shared by all nodes)")
        self.full_range = spec.full_range
        self.batch_size = spec.batch_size or self.colorizer.preferred_batch_size()
        self.inference_lock = threading.Lock()  # one inference at a time; I/O of the other overlaps
        gpus = ",".join(str(g) for g in ray.get_gpu_ids())
        self.name = f"{socket.gethostname()}:{os.getpid()}:{device}" + (f":gpus={gpus}" if gpus else "")

    def check_store(self) -> str | None:
        """None when this actor sees the run in the store, else why not (one line)."""
        return self.store_problem

    def colorize(self, chunk: Chunk) -> dict:
        from vidcolor.stages.colorize import colorize_chunk

        if self.store_problem:
            raise RuntimeError(self.store_problem)
        return colorize_chunk(
            self.store, self.layout, chunk, self.colorizer, self.full_range,
            batch_size=self.batch_size, inference_lock=self.inference_lock, worker=self.name,
        )


def colorize_chunks_on_actors(
    todo: list[Chunk],
    spec: ActorSpec,
    *,
    workers: int,
    gpus_per_worker: float,
    cpus_per_worker: float,
    max_attempts: int,
    on_chunk_done: Callable[[Chunk, dict], None],
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
    scheduler = ChunkScheduler(max_attempts=max_attempts, depth=PIPELINE_DEPTH)
    for chunk in todo:
        scheduler.add(WorkItem(chunk.index, cost=chunk.ext_frames, payload=chunk))
    actors: dict[int, object] = {}
    next_id = 0

    def start_actor() -> None:
        nonlocal next_id
        actors[next_id] = ColorizerActor.options(**options).remote(spec, threads)
        scheduler.add_worker(next_id)
        next_id += 1

    for _ in range(min(workers, len(todo))):
        start_actor()
    _fail_fast_if_store_not_visible(list(actors.values()))
    inflight: dict = {}  # object ref -> (actor id, chunk index)
    while not scheduler.finished:
        for actor_id, actor in list(actors.items()):
            while (item := scheduler.next_for(actor_id)) is not None:
                inflight[actor.colorize.remote(item.payload)] = (actor_id, item.key)
        if not inflight:
            if scheduler.needs_worker():  # every queued chunk failed on every live actor
                start_actor()
            continue
        ready, _ = ray.wait(list(inflight), num_returns=1)
        actor_id, key = inflight.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except ray.exceptions.RayActorError as e:
            scheduler.failed(actor_id, key, f"worker died: {_short(e)}")
            if actor_id in actors:  # replace it once, whichever of its chunks reports first
                ray.kill(actors.pop(actor_id), no_restart=True)
                scheduler.remove_worker(actor_id)  # its other chunk in flight reports its own failure
                start_actor()
            continue
        except ray.exceptions.RayTaskError as e:
            scheduler.failed(actor_id, key, _short(e))
            continue
        item = scheduler.succeeded_on(actor_id, key)
        on_chunk_done(item.payload, result)
    for actor in actors.values():
        ray.kill(actor, no_restart=True)
    return dict(scheduler.quarantined)


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
