"""One run of one film: the owner of its run state and of every resume decision.

A ``Run`` is made from a checked ``Job``. Each stage is one method; each method decides from the
store alone what is already done (a plan written by a finished split, a chunk whose marker's
checksum matches its chroma, a segment likewise) and does only the rest. ``run.json`` is written
here and nowhere else. Prefect tasks call these methods; nothing else decides.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from vidcolor import progress
from vidcolor.errors import RunFailedError
from vidcolor.job import Job
from vidcolor.plan import Plan
from vidcolor.settings import ExecutionSettings
from vidcolor.state import Invocation, RunRecord, check_version, chunk_is_done, load_run_record, segment_is_done
from vidcolor.store import ObjectStore, bucket_store, is_s3_uri, open_store, split_s3_uri


class Run:
    def __init__(self, job: Job, store: ObjectStore | None = None):
        self.job = job
        self.store = store or open_store(job.store_uri)
        self.layout = job.layout
        self._record: RunRecord | None = None
        self._steering: dict | None = None  # chunk index -> ChunkKeyframes (colour keyframes)

    # --- run.json ----------------------------------------------------------------------------
    @property
    def record(self) -> RunRecord:
        if self._record is None:
            self._record = load_run_record(self.store, self.layout)
        return self._record

    def _save(self) -> None:
        self.store.put_json(self.layout.run_json, self.record.to_dict())

    def start(self) -> None:
        """Open this invocation in run.json, with what the run id was made of."""
        job = self.job
        self.record.status = "running"
        self.record.invocations.append(Invocation(
            started_at=time.time(), pid=os.getpid(), input=job.input_uri, output=job.output_uri,
            model=job.model_identity, encode_key=job.encode_key, chroma=job.chroma.key(job.model_identity)))
        self._save()

    def add_timing(self, stage: str, seconds: float) -> None:
        timings = self.record.current.timings
        timings[stage] = round(timings.get(stage, 0.0) + seconds, 3)
        self._save()

    def add_summary(self, **measures) -> None:
        self.record.current.summary.update(measures)
        self._save()

    def fail(self, error: str) -> None:
        self._finish("failed", error=error)

    def _finish(self, status: str, **fields) -> None:
        self.record.status = status
        current = self.record.current
        for name, value in {"status": status, "finished_at": time.time(), **fields}.items():
            setattr(current, name, value)
        self._save()

    # --- split -------------------------------------------------------------------------------
    def existing_plan(self) -> Plan | None:
        """The plan a finished split wrote, if it is readable and made from this very source;
        None means split (again). A plan of a newer format is refused, not rewritten."""
        key = self.layout.plan
        try:
            doc = self.store.get_json(key)
        except (KeyError, ValueError):
            return None
        if not isinstance(doc, dict):
            return None
        from vidcolor.plan import PLAN_FORMAT

        check_version(doc, key, PLAN_FORMAT)
        try:
            plan = Plan.from_dict(doc)
        except (KeyError, TypeError, ValueError):
            return None
        # the path may differ between invocations (a relative path, a staged copy); the rest may not
        if replace(plan.video, path="") != replace(self.job.info, path="") or plan.run_id != self.job.run_id:
            return None
        return plan

    def split(self) -> Plan:
        plan = self.existing_plan()
        if plan is not None:
            return plan
        progress.start("split", self.job.info.frame_count_header or 0)
        try:
            plan = self.split_source(on_frames=progress.advancer("split"))
        finally:
            progress.finish("split")
        self.add_timing("split", plan.split_seconds)
        return plan

    def split_source(self, on_frames: Callable[[int], None] | None = None) -> Plan:
        """The split stage alone, writing no run.json: what a Ray CPU task runs for a batch."""
        from vidcolor.stages.split import split_film

        job = self.job
        return split_film(self.store, self.layout, job.source_path, job.info, job.chroma, job.size_multiple,
                          on_frames=on_frames)

    # --- colorize ----------------------------------------------------------------------------
    def colorize(self, plan: Plan, execution: ExecutionSettings) -> dict:
        """Every chunk without a valid marker goes to the actor pool. RunFailedError names the
        chunks quarantined after ``execution.max_attempts`` failures."""
        todo, reused = self.chunks_to_colorize(plan)
        progress.start("colorize", plan.total_frames)
        progress.advance("colorize", sum(c.core_frames for c in reused))

        def on_chunk_done(chunk, result) -> None:
            self.note_colorized(chunk.index)
            progress.advance("colorize", chunk.core_frames)

        from vidcolor.executor.ray_pool import colorize_chunks_on_actors

        t0 = time.time()
        try:
            quarantined = colorize_chunks_on_actors(
                todo, self.actor_spec(execution), self.chunk_task, workers=execution.workers,
                gpus_per_worker=execution.gpus_per_worker, cpus_per_worker=execution.cpus_per_worker,
                max_attempts=execution.max_attempts, on_chunk_done=on_chunk_done)
        finally:
            progress.finish("colorize")
            self.add_timing("colorize", time.time() - t0)
        if quarantined:
            raise self.quarantine(quarantined, execution.max_attempts)
        return {"colorized": len(todo), "reused": len(reused)}

    def chunks_to_colorize(self, plan: Plan) -> tuple[list, list]:
        """(to do, reused): a chunk is reused only when its marker's checksum matches its chroma."""
        todo, reused = [], []
        steer = self.keyframe_steering(plan)
        for c in plan.chunks:
            digest = steer[c.index].digest if c.index in steer else ""
            (reused if chunk_is_done(self.store, self.layout, c.index, c.ext_frames, digest) else todo).append(c)
        self.record.current.chunks_reused = [c.index for c in reused]
        self._save()
        return todo, reused

    def note_colorized(self, index: int) -> None:
        self.record.current.chunks_colorized.append(index)
        self.record.quarantined.pop(str(index), None)
        self._save()

    def quarantine(self, quarantined: dict[int, str], max_attempts: int) -> RunFailedError:
        """Record the quarantined chunks; the error that ends the run, naming them."""
        self.record.quarantined.update({str(k): v for k, v in sorted(quarantined.items())})
        self._save()
        first = min(quarantined)
        names = ", ".join(str(i) for i in sorted(quarantined))
        return RunFailedError(
            self.job.input_uri,
            f"chunk {names} failed {max_attempts} times and was quarantined "
            f"(last error of chunk {first}: {quarantined[first]}); run again to retry only the missing chunks",
        )

    def finished_output_exists(self) -> bool:
        """This run already wrote this output and it is still there: nothing to do."""
        rec = self.record
        if rec.status != "succeeded" or not rec.invocations or rec.current.output != self.job.output_uri:
            return False
        out = self.job.output_uri
        if is_s3_uri(out):
            return bucket_store(out).stat(split_s3_uri(out)[1]) is not None
        return Path(out).is_file()

    def actor_spec(self, execution: ExecutionSettings):
        from vidcolor.executor.ray_pool import ActorSpec

        chroma = self.job.chroma
        return ActorSpec(chroma.model, execution.batch_size, chroma.palette, chroma.palette_strength,
                         chroma.temporal_attention, chroma.stabilizer_strength)

    def chunk_task(self, chunk):
        from vidcolor.executor.ray_pool import ChunkTask

        return ChunkTask(self.job.store_uri, self.job.run_id, self.job.info.full_range, chunk,
                         (self._steering or {}).get(chunk.index))

    # --- colour keyframes (vidcolor.keyframes) ----------------------------------------------
    def keyframe_steering(self, plan: Plan) -> dict:
        """What steers each chunk; the first call copies the keyframes into the run state."""
        if self._steering is None:
            from vidcolor.keyframes import store_keyframes

            self._steering = store_keyframes(self.store, self.layout, plan, self.job.keyframes,
                                             self.job.chroma.keyframe_palette)
        return self._steering

    def segment_keyframes(self, plan: Plan, index: int) -> str:
        """Digest of the keyframes steering chunk ``index``'s segment (no run-state writes)."""
        if not self.job.keyframes:
            return ""
        from vidcolor.keyframes import segment_digest, steering

        return segment_digest(plan, steering(plan, self.job.keyframes, self.job.chroma.keyframe_palette), index)

    # --- stitch ------------------------------------------------------------------------------
    def stitch(self, plan: Plan, index: int) -> dict:
        """One chunk's segment (reused when its marker checks out). Safe in parallel threads:
        it writes no run.json."""
        from vidcolor.stages.stitch import stitch_chunk

        chunk = plan.chunks[index]
        job = self.job
        keyframes = self.segment_keyframes(plan, index)
        if segment_is_done(self.store, self.layout, job.encode_key, index, chunk.core_frames, keyframes):
            progress.advance("stitch", chunk.core_frames)
            return {"chunk": index, "frames": chunk.core_frames, "reused": True}
        return stitch_chunk(self.store, self.layout, plan, index, job.source_path, job.encode, job.encode_key,
                            on_frames=progress.advancer("stitch"), keyframes=keyframes)

    # --- concat + mux ------------------------------------------------------------------------
    def finalize(self, plan: Plan, segments: list[dict]) -> dict:
        from vidcolor.stages.finalize import finalize_output

        job = self.job
        t0 = time.time()
        result = finalize_output(self.store, self.layout, plan, job.encode_key, job.encode.codec, job.output_uri,
                                 job.info)
        self.add_timing("concat_mux", time.time() - t0)
        self.add_timing("stitch_chunk_seconds", sum(s.get("seconds", 0.0) for s in segments))
        from vidcolor.report import run_temporal_summary

        self.record.current.summary["temporal"] = run_temporal_summary(self.store, self.layout, plan)  # CDC, seams
        started = self.record.current.started_at
        self._finish("succeeded", output=job.output_uri, wall_seconds=round(time.time() - started, 3))
        return {**result, "run_id": job.run_id}

