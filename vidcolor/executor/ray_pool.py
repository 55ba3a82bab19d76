"""The Ray actors that hold a model, and the pool that feeds them chunks as the scheduler says.

Each actor loads the model once and serves chunks of any run (a chunk task names its store and
run), so one pool serves every film of an archive batch. Actors pull the next chunk as soon as
they have room (two in flight each, so one chunk's download and upload overlap the other's
inference). A chunk that fails is retried on another actor; a dead actor is replaced. After
``max_attempts`` failures a chunk is quarantined and the rest carries on.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import ray

from vidcolor.errors import RunFailedError
from vidcolor.executor.ray_runtime import ensure_ray
from vidcolor.executor.scheduler import ChunkScheduler, WorkItem
from vidcolor.plan import Chunk

PIPELINE_DEPTH = 2


@dataclass(frozen=True)
class ActorSpec:
    """What a colorizer actor is built from: the model and how it decodes."""

    model_spec: str
    batch_size: int = 0  # 0 = the colorizer's preferred_batch_size()
    palette: str = ""
    palette_strength: float = 1.0
    temporal_attention: bool = True  # False: frame by frame
    stabilize_strength: float = 0.0  # the flow-guided chroma stabiliser's strength; 0 = off


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of one run, as an actor needs it."""

    store_uri: str
    run_id: str
    full_range: bool
    chunk: Chunk
    keyframes: object = None  # vidcolor.keyframes.ChunkKeyframes: what steers the chunk, or None


class StoreNotVisible(RuntimeError):
    """The actor's node cannot see the run in the store: every retry would fail the same way."""


def auto_threads(actors_per_node: int) -> int:
    """Torch threads of an actor that names no CPU count: its node's cores (those this process may
    run on) shared by the pool's actors there. Ray reserves one CPU for it, but torch would use
    only that one core if told so, and on a small machine the model is the work to keep fast."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, actors_per_node))


@ray.remote(max_concurrency=PIPELINE_DEPTH)
class ColorizerActor:
    def __init__(self, spec: ActorSpec, threads: int, actors_per_node: int = 1):
        import torch

        from vidcolor.colorizers import load_colorizer

        torch.set_num_threads(threads or auto_threads(actors_per_node))
        device = "cuda" if torch.cuda.is_available() and ray.get_gpu_ids() else "cpu"
        from vidcolor.stabilize import StabilizerParams

        self.colorizer = load_colorizer(spec.model_spec, device=device, palette=spec.palette,
                                        palette_strength=spec.palette_strength)
        self.colorizer.set_temporal_attention(spec.temporal_attention)
        self.stabilizer = StabilizerParams(strength=spec.stabilize_strength) if spec.stabilize_strength > 0 else None
        self.batch_size = spec.batch_size or self.colorizer.preferred_batch_size()
        self.inference_lock = threading.Lock()  # one inference at a time; I/O of the other overlaps
        self.stores: dict[str, object] = {}
        self.visible: dict[tuple[str, str], str | None] = {}
        gpus = ",".join(str(g) for g in ray.get_gpu_ids())
        self.name = f"{socket.gethostname()}:{os.getpid()}:{device}" + (f":gpus={gpus}" if gpus else "")

    def _store(self, uri: str):
        from vidcolor.store import open_store

        if uri not in self.stores:
            self.stores[uri] = open_store(uri)
        return self.stores[uri]

    def check_store(self, store_uri: str, run_id: str) -> str | None:
        """None when this actor sees the run in the store, else why not (one line)."""
        from vidcolor.state import RunLayout

        key = (store_uri, run_id)
        if key not in self.visible:
            # e.g. a local store folder on the driver's disk while this actor runs on another node
            seen = self._store(store_uri).exists(RunLayout(run_id).plan)
            self.visible[key] = None if seen else (
                f"{store_uri}: run {run_id} is not visible from Ray node {socket.gethostname()}; every node "
                "must see the store (use an s3:// store, or a folder shared by all nodes)")
        return self.visible[key]

    def colorize(self, task: ChunkTask) -> dict:
        from vidcolor.stages.colorize import colorize_chunk
        from vidcolor.state import RunLayout

        problem = self.check_store(task.store_uri, task.run_id)
        if problem:
            raise StoreNotVisible(problem)
        return colorize_chunk(
            self._store(task.store_uri), RunLayout(task.run_id), task.chunk, self.colorizer, task.full_range,
            batch_size=self.batch_size, inference_lock=self.inference_lock, worker=self.name,
            stabilizer=self.stabilizer, keyframes=task.keyframes,
        )


_warm: dict[tuple, list] = {}  # actors started ahead of their pool, by what they were started with


def prestart_actors(spec: ActorSpec, *, workers: int, gpus_per_worker: float, cpus_per_worker: float) -> None:
    """Start a run's colorizer actors before it needs them: their model loads while the film is
    probed and split. The run's pool takes them over when it asks for actors of the same spec and
    resources; unused ones end with the Ray session."""
    pool = ColorizerPool(spec, workers=workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
                         max_attempts=1)
    _warm.setdefault(pool.actor_key, []).extend(pool.new_actor() for _ in range(workers))


@dataclass
class Outcome:
    item: WorkItem
    result: dict | None = None  # set when it succeeded
    error: str | None = None  # set when it failed
    quarantined: bool = False  # failed for the last time
    store_not_visible: bool = False


class ColorizerPool:
    """Colorizer actors of one model, fed by a ChunkScheduler. Work items carry ChunkTask payloads.
    The owner drives it: ``pump()`` hands work out, ``refs`` are the calls in flight, and
    ``collect(ref)`` turns a finished call into an Outcome."""

    def __init__(self, spec: ActorSpec, *, workers: int, gpus_per_worker: float, cpus_per_worker: float,
                 max_attempts: int):
        ensure_ray(workers * (cpus_per_worker or 1.0))
        if gpus_per_worker > 0:
            have = ray.cluster_resources().get("GPU", 0)
            if have < gpus_per_worker:
                raise RunFailedError("--gpus-per-worker", f"asks for {gpus_per_worker} GPU per worker but the Ray cluster has {have:g} GPUs")
        self.spec = spec
        self.workers = workers
        self.options = {"num_cpus": cpus_per_worker or 1.0, "num_gpus": gpus_per_worker}
        self.threads = max(1, int(cpus_per_worker)) if cpus_per_worker else 0  # 0: auto_threads in the actor
        nodes = sum(1 for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU"))
        self.actors_per_node = -(-workers // max(1, nodes))  # assumed spread evenly over the nodes
        self.scheduler = ChunkScheduler(max_attempts=max_attempts, depth=PIPELINE_DEPTH)
        self.actors: dict[int, object] = {}
        self._next_id = 0
        self.inflight: dict = {}  # object ref -> (actor id, item key)

    def add(self, item: WorkItem) -> None:
        self.scheduler.add(item)

    def drop(self, keep: Callable[[WorkItem], bool]) -> list[WorkItem]:
        """Remove queued items that ``keep`` rejects (a film that failed); returns them."""
        return self.scheduler.drop(keep)

    @property
    def actor_key(self) -> tuple:
        """What this pool's actors are started with: a prestarted actor with the same key serves it."""
        return self.spec, tuple(sorted(self.options.items())), self.threads, self.actors_per_node

    def new_actor(self):
        return ColorizerActor.options(**self.options).remote(self.spec, self.threads, self.actors_per_node)

    def start_actor(self):
        warm = _warm.get(self.actor_key)
        actor = warm.pop(0) if warm else self.new_actor()
        self.actors[self._next_id] = actor
        self.scheduler.add_worker(self._next_id)
        self._next_id += 1
        return actor

    def pump(self) -> None:
        """Start actors as work appears (up to ``workers``) and give each what it has room for."""
        want = min(self.workers, self.scheduler.queued + self.scheduler.running)
        while len(self.actors) < want:
            self.start_actor()
        for actor_id, actor in list(self.actors.items()):
            while (item := self.scheduler.next_for(actor_id)) is not None:
                self.inflight[actor.colorize.remote(item.payload)] = (actor_id, item.key)
        if not self.inflight and self.scheduler.needs_worker():  # every queued chunk failed on every live actor
            self.start_actor()
            self.pump()

    @property
    def refs(self) -> list:
        return list(self.inflight)

    @property
    def idle(self) -> bool:
        return self.scheduler.finished

    def collect(self, ref) -> Outcome:
        actor_id, key = self.inflight.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            outcome = self._failed(actor_id, key, f"worker died: {_short(e)}")
            if actor_id in self.actors:  # replace it once, whichever of its chunks reports first
                ray.kill(self.actors.pop(actor_id), no_restart=True)
                self.scheduler.remove_worker(actor_id)  # its other chunk in flight reports its own failure
            return outcome
        except ray.exceptions.RayTaskError as e:
            if isinstance(getattr(e, "cause", None), StoreNotVisible):
                item = self.scheduler.quarantine(actor_id, key, str(e.cause))
                return Outcome(item, error=str(e.cause), quarantined=True, store_not_visible=True)
            return self._failed(actor_id, key, _short(e))
        return Outcome(self.scheduler.succeeded_on(actor_id, key), result=result)

    def _failed(self, actor_id: int, key: Hashable, error: str) -> Outcome:
        item = self.scheduler.running_item(key)
        quarantined = self.scheduler.failed(actor_id, key, error)
        return Outcome(item, error=error, quarantined=quarantined)

    def check_store(self, store_uri: str, run_id: str) -> None:
        """Wait for the actors to start; if one cannot see the run, RunFailedError with that one
        line (a chunk retry would fail the same way on every attempt). Other start-up failures are
        left to the pool, which retries and replaces actors."""
        for actor in list(self.actors.values()):
            try:
                problem = ray.get(actor.check_store.remote(store_uri, run_id))
            except ray.exceptions.RayActorError:
                continue
            if problem:
                self.shutdown()
                raise RunFailedError(None, problem)

    def shutdown(self) -> None:
        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)
        self.actors.clear()


def colorize_chunks_on_actors(
    todo: list[Chunk],
    spec: ActorSpec,
    task: Callable[[Chunk], ChunkTask],
    *,
    workers: int,
    gpus_per_worker: float,
    cpus_per_worker: float,
    max_attempts: int,
    on_chunk_done: Callable[[Chunk, dict], None],
) -> dict[int, str]:
    """Colorize the chunks of one run; returns quarantined chunks {index: last error}. Never raises
    for a chunk; RunFailedError when the actors cannot see the run at all."""
    if not todo:
        return {}
    pool = ColorizerPool(spec, workers=workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
                         max_attempts=max_attempts)
    for chunk in todo:
        # in film order (equal costs): a chunk's stitch, and its scene's stabiliser pass, can then
        # follow the actors chunk by chunk; chunks all lie within the chunk cap, so costliest-first
        # would gain little and would scatter every scene's chunks to the end of the run
        pool.add(WorkItem(chunk.index, payload=task(chunk)))
    first = task(todo[0])
    for _ in range(min(workers, len(todo))):
        pool.start_actor()
    pool.check_store(first.store_uri, first.run_id)
    quarantined: dict[int, str] = {}
    try:
        while not pool.idle:
            pool.pump()
            ready, _ = ray.wait(pool.refs, num_returns=1)
            outcome = pool.collect(ready[0])
            if outcome.result is not None:
                on_chunk_done(outcome.item.payload.chunk, outcome.result)
            elif outcome.quarantined:
                quarantined[outcome.item.key] = outcome.error
    finally:
        pool.shutdown()
    return quarantined


def _short(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e
    text = f"{type(cause).__name__}: {cause}"
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(cause).__name__)[:300]
