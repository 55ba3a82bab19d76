"""Many films in flight on one shared colorizer pool.

Up to ``films_in_flight`` films are open at once (split and stitch use CPU and disk). Each film is
split by a Ray CPU task; its chunks join one scheduler shared by every film in flight (higher
priority first, longest chunk first), served by one pool of colorizer actors, so the actors stay
busy across film boundaries. A chunk's stitch starts as a Ray CPU task the moment it and its
neighbours in the scene are colorized; the film's concat + mux starts when its last segment lands.
A film's failure never stops the others; every resume decision is the film's ``Run``'s.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import ray

from vidcolor.archive import FilmRequest
from vidcolor.errors import VidcolorError
from vidcolor.executor.ray_pool import ColorizerPool
from vidcolor.executor.ray_runtime import ensure_ray
from vidcolor.executor.scheduler import WorkItem
from vidcolor.plan import Plan, completed_by, stitch_ready
from vidcolor.settings import ExecutionSettings
from vidcolor.store import bucket_store, is_s3_uri, split_s3_uri


def _split(job) -> Plan:
    from vidcolor.run import Run

    return Run(job).split_source()


def _stitch(job, plan: Plan, index: int, stabilized: bool = False) -> dict:
    from vidcolor.run import Run

    return Run(job).stitch(plan, index, stabilized)


def _stabilize_scene(job, plan: Plan, members: list[int]) -> dict:
    from vidcolor.run import Run

    return Run(job).stabilize_scene(plan, members)


@dataclass
class Film:
    index: int
    request: FilmRequest
    run: object = None  # vidcolor.run.Run
    plan: Plan | None = None
    status: str = "pending"  # pending, splitting, colorizing, finishing, succeeded, skipped, failed
    error: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    done: set = field(default_factory=set)  # chunk indices colorized (now or before)
    reused: int = 0
    colorized: int = 0
    quarantined: dict = field(default_factory=dict)
    resplit: set = field(default_factory=set)  # chunks whose damaged source was split again
    stitching: set = field(default_factory=set)
    passes: dict = field(default_factory=dict)  # first chunk of a scene the stabiliser passes over -> its chunks
    stabilizing: set = field(default_factory=set)
    segments: dict = field(default_factory=dict)
    actor_seconds: float = 0.0
    result: dict | None = None

    @property
    def open(self) -> bool:
        return self.status in ("splitting", "colorizing", "finishing")


class ArchiveRunner:
    def __init__(self, films: list[FilmRequest], store_uri: str | None, execution: ExecutionSettings,
                 films_in_flight: int = 2, on_change: Callable[[Film], None] | None = None):
        self.films = [Film(k, r) for k, r in enumerate(films)]
        self.store_uri = store_uri
        self.execution = execution
        self.films_in_flight = max(1, films_in_flight)
        self.on_change = on_change or (lambda film: None)
        self.pools: dict = {}  # ActorSpec -> ColorizerPool
        self.split_refs: dict = {}  # ref -> film
        self.stitch_refs: dict = {}  # ref -> (film, chunk index)
        self.scene_refs: dict = {}  # ref -> (film, first chunk of the scene)
        self.finishing: dict[Future, Film] = {}

    def run(self) -> list[Film]:
        ex = self.execution
        ensure_ray(ex.workers * ex.actor_cpus)
        self._split_task = ray.remote(num_cpus=1)(_split)
        self._stitch_task = ray.remote(num_cpus=1)(_stitch)
        self._scene_task = ray.remote(num_cpus=1)(_stabilize_scene)
        # higher priority films open first, the largest first within a priority (size stands in for
        # length, which only a probe would tell): a long film opened last would leave the actors idle
        # at the end while it splits. The scheduler then orders the chunks of the films in flight.
        waiting = sorted(self.films, key=lambda f: (-f.request.priority, -_size_hint(f.request.input_uri)))
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vidcolor-mux") as muxers:
            self.muxers = muxers
            try:
                while waiting or any(f.open for f in self.films):
                    while waiting and sum(f.open for f in self.films) < self.films_in_flight:
                        self._open(waiting.pop(0))
                    self._step()
            finally:
                for pool in self.pools.values():
                    pool.shutdown()
        return self.films

    # --- one turn of the loop -----------------------------------------------------------------
    def _step(self) -> None:
        for pool in self.pools.values():
            if not pool.idle:
                pool.pump()
        refs = list(self.split_refs) + list(self.stitch_refs) + list(self.scene_refs)
        by_pool = {}
        for pool in self.pools.values():
            for ref in pool.refs:
                by_pool[ref] = pool
        refs += list(by_pool)
        if refs:
            ready, _ = ray.wait(refs, num_returns=1, timeout=0.2)
        else:
            ready = []
            time.sleep(0.05)
        for ref in ready:
            if ref in self.split_refs:
                self._split_done(self.split_refs.pop(ref), ref)
            elif ref in self.stitch_refs:
                film, index = self.stitch_refs.pop(ref)
                self._stitch_done(film, index, ref)
            elif ref in self.scene_refs:
                film, first = self.scene_refs.pop(ref)
                self._scene_done(film, first, ref)
            else:
                self._chunk_done(by_pool[ref].collect(ref))
        for fut in [f for f in self.finishing if f.done()]:
            film = self.finishing.pop(fut)
            try:
                film.result = fut.result()
                self._close(film, "succeeded")
            except Exception as e:  # noqa: BLE001 - one film's failure is reported, the batch goes on
                self._fail(film, e)

    # --- a film's life --------------------------------------------------------------------------
    def _open(self, film: Film) -> None:
        from vidcolor.job import prepare_job
        from vidcolor.run import Run

        req = film.request
        film.started_at = time.time()
        try:
            job = prepare_job(req.input_uri, req.output_uri, req.chroma, req.encode, self.store_uri)
            film.run = run = Run(job)
            if run.finished_output_exists():
                film.plan = run.existing_plan()
                self._close(film, "skipped")
                return
            run.start()
            film.status = "splitting"
            self.on_change(film)
            plan = run.existing_plan()
            if plan is None:
                self.split_refs[self._split_task.remote(job)] = film
            else:
                self._planned(film, plan)
        except Exception as e:  # noqa: BLE001
            self._fail(film, e)

    def _split_done(self, film: Film, ref) -> None:
        try:
            plan = ray.get(ref)
            film.run.add_timing("split", plan.split_seconds)
            self._planned(film, plan)
        except Exception as e:  # noqa: BLE001
            self._fail(film, _cause(e))

    def _planned(self, film: Film, plan: Plan) -> None:
        run = film.run
        film.plan = plan
        film.status = "colorizing"
        spec = run.actor_spec(self.execution)
        pool = self.pools.get(spec)
        if pool is None:
            ex = self.execution
            pool = self.pools[spec] = ColorizerPool(spec, workers=ex.workers, gpus_per_worker=ex.gpus_per_worker,
                                                    cpus_per_worker=ex.cpus_per_worker, max_attempts=ex.max_attempts)
        todo, reused = run.chunks_to_colorize(plan)
        film.done.update(c.index for c in reused)
        film.passes = run.scenes_to_stabilize(plan)
        film.reused = len(reused)
        for c in todo:
            pool.add(WorkItem((film.index, c.index), cost=c.ext_frames, priority=film.request.priority,
                              payload=run.chunk_task(c)))
        self.on_change(film)
        for c in plan.chunks:
            self._maybe_stitch(film, c.index)
        self._maybe_settle(film)

    def _chunk_done(self, outcome) -> None:
        film_index, index = outcome.item.key
        film = self.films[film_index]
        if not film.open:
            return  # the film failed meanwhile
        if outcome.result is not None:
            film.done.add(index)
            film.colorized += 1
            film.actor_seconds += outcome.result.get("seconds", 0.0)
            film.run.note_colorized(index)
            for i in completed_by(list(film.plan.chunks), index):
                self._maybe_stitch(film, i)
        elif outcome.quarantined:
            film.quarantined[index] = outcome.error
            if outcome.store_not_visible:
                self._fail(film, RuntimeError(outcome.error))
                return
        self._maybe_settle(film)

    def _maybe_stitch(self, film: Film, index: int) -> None:
        """Stitch a chunk once its neighbours in the scene are colorized; a scene the stabiliser
        passes over is stabilised once all of it is, then its chunks are stitched."""
        if index in film.stitching or index in film.stabilizing or film.status != "colorizing":
            return
        if not stitch_ready(list(film.plan.chunks), index, film.done, film.passes):
            return
        if index in film.passes:
            film.stabilizing.add(index)
            self.scene_refs[self._scene_task.remote(film.run.job, film.plan, film.passes[index])] = (film, index)
        else:
            self._start_stitch(film, index, False)

    def _start_stitch(self, film: Film, index: int, stabilized: bool) -> None:
        film.stitching.add(index)
        self.stitch_refs[self._stitch_task.remote(film.run.job, film.plan, index, stabilized)] = (film, index)

    def _scene_done(self, film: Film, first: int, ref) -> None:
        if not film.open:
            return
        try:
            ray.get(ref)
        except Exception as e:  # noqa: BLE001
            self._fail(film, _cause(e))
            return
        for index in film.passes[first]:
            self._start_stitch(film, index, True)

    def _stitch_done(self, film: Film, index: int, ref) -> None:
        if not film.open:
            return
        try:
            film.segments[index] = ray.get(ref)
        except Exception as e:  # noqa: BLE001
            self._fail(film, _cause(e))
            return
        self._maybe_settle(film)

    def _maybe_settle(self, film: Film) -> None:
        """All chunks accounted for: quarantine ends the film; all segments in: concat + mux."""
        if film.status != "colorizing":
            return
        n = len(film.plan.chunks)
        if len(film.done) + len(film.quarantined) < n:
            return
        if film.quarantined and not film.resplit:
            # a chunk source damaged in the store is split again from the film, once, then retried
            film.resplit = set(film.run.resplit_damaged(film.plan, film.quarantined))
            if film.resplit:
                pool = self.pools[film.run.actor_spec(self.execution)]
                for index in sorted(film.resplit):
                    c = film.plan.chunks[index]
                    pool.add(WorkItem((film.index, index), cost=c.ext_frames, priority=film.request.priority,
                                      payload=film.run.chunk_task(c)))
                return
        if film.quarantined:
            self._fail(film, film.run.quarantine(film.quarantined, self.execution.max_attempts))
            return
        if len(film.segments) == n:
            film.status = "finishing"
            segments = [film.segments[i] for i in range(n)]
            self.finishing[self.muxers.submit(film.run.finalize, film.plan, segments)] = film

    def _fail(self, film: Film, error: BaseException) -> None:
        film.error = str(error) if isinstance(error, VidcolorError) else f"{film.request.input_uri}: {error}"
        for pool in self.pools.values():
            pool.drop(lambda item: item.key[0] != film.index)
        if film.run is not None and film.run.record.invocations:
            try:
                film.run.fail(film.error)
            except Exception:  # noqa: BLE001 - the store itself may be what failed
                pass
        self._close(film, "failed")

    def _close(self, film: Film, status: str) -> None:
        film.status = status
        film.finished_at = time.time()
        self.on_change(film)


def _size_hint(uri: str) -> int:
    try:
        if is_s3_uri(uri):
            stat = bucket_store(uri).stat(split_s3_uri(uri)[1])
            return stat.size if stat else 0
        return os.path.getsize(uri)
    except (OSError, VidcolorError):
        return 0  # a missing film fails on its own turn, with its own line


def _cause(e: BaseException) -> BaseException:
    """A Ray task's error as the library raised it (BadInputError stays one line)."""
    return getattr(e, "cause", None) or e


def film_row(film: Film) -> dict:
    """The film's row in the batch report."""
    run = film.run
    job = run.job if run is not None else None
    summary = {}
    if run is not None and run.record.invocations:
        summary = run.record.current.summary
    return {
        "input": film.request.input_uri, "output": film.request.output_uri,
        "run_id": job.run_id if job else None, "status": film.status,
        "frames": film.plan.total_frames if film.plan else None,
        "duration_s": job.info.duration if job else None,
        "wall_s": round(film.finished_at - film.started_at, 3) if film.finished_at else None,
        "actor_seconds": round(film.actor_seconds, 3), "chunks_colorized": film.colorized,
        "chunks_reused": film.reused, "quality": json.dumps(summary, sort_keys=True) if summary else None,
        "error": film.error,
    }


def run_batch(films: list[FilmRequest], source: str, store_uri: str | None, execution: ExecutionSettings,
              films_in_flight: int, report: str) -> dict:
    """Run a batch, keeping batches/<id>/batch.json current for ``vidcolor status``; write the
    Parquet report. Returns the rows and which films succeeded, were skipped or failed."""
    from vidcolor.archive import BatchRecord, FilmEntry, batch_id, write_report
    from vidcolor.store import open_store

    store = open_store(store_uri)
    record = BatchRecord(batch_id(films), source, [FilmEntry(f.input_uri, f.output_uri, f.priority) for f in films])
    record.save(store)

    def on_change(film: Film) -> None:
        entry = record.films[film.index]
        entry.status = "running" if film.open else film.status
        entry.run_id = film.run.job.run_id if film.run is not None else None
        entry.error = film.error
        entry.frames = film.plan.total_frames if film.plan else None
        entry.started_at, entry.finished_at = film.started_at, film.finished_at or None
        entry.actor_seconds, entry.chunks_colorized, entry.chunks_reused = film.actor_seconds, film.colorized, film.reused
        record.save(store)

    runner = ArchiveRunner(films, store_uri, execution, films_in_flight, on_change)
    try:
        done = runner.run()
        record.status = "failed" if any(f.status == "failed" for f in done) else "succeeded"
    except BaseException:
        record.status = "interrupted"
        raise
    finally:
        record.finished_at = time.time()
        record.save(store)
    rows = [film_row(f) for f in done]
    write_report(rows, report)
    return {
        "batch_id": record.batch_id, "report": report, "films": rows,
        "succeeded": {f.request.input_uri: (f.result or {"output": f.request.output_uri, "skipped": True})
                      for f in done if f.status in ("succeeded", "skipped")},
        "skipped": [f.request.input_uri for f in done if f.status == "skipped"],
        "failed": {f.request.input_uri: f.error for f in done if f.status == "failed"},
    }
