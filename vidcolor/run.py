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
from vidcolor.errors import DiskFullError, RunFailedError, is_disk_full, names_disk_full
from vidcolor.failpoints import failpoint
from vidcolor.job import Job
from vidcolor.plan import Plan, scene_chunks
from vidcolor.settings import ExecutionSettings
from vidcolor.state import (DAMAGED_SOURCE, Invocation, RunRecord, check_version, chunk_is_done, frame_table_rows,
                            load_run_record, segment_is_done, verified_split)
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
        """Take the run's and the output's leases (waiting while another invocation holds one),
        close the invocations a kill left open and clean what they left behind, then open this
        invocation in run.json, with what the run id was made of."""
        # --- leases and recovery (vidcolor/recovery.py) ---
        from vidcolor import recovery

        recovery.hold_leases(self.store, self.job)
        recovery.close_killed_invocations(self.record)
        recovery.clean_leftovers(self.store, self.job)
        # ---
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

    def fail(self, error: str) -> None:
        from vidcolor import recovery

        # only the lease holder writes run.json (an invocation that never got the lease has nothing to close)
        if recovery.holds_run_lease(self.store, self.job):
            self._finish("failed", error=error)
        recovery.release_leases(self.store, self.job)

    def check_leases(self) -> None:
        """Stop (LeaseLostError) when another invocation took the leases this process holds."""
        from vidcolor import recovery

        recovery.check_leases(self.store, self.job)

    def _finish(self, status: str, **fields) -> None:
        self.record.status = status
        current = self.record.current
        for name, value in {"status": status, "finished_at": time.time(), **fields}.items():
            setattr(current, name, value)
        self._save()

    # --- split -------------------------------------------------------------------------------
    def existing_plan(self) -> Plan | None:
        """The plan a finished split wrote, if plan.json and frames.parquet match the checksums in
        its marker, it is well formed, made from this very source (the probe) and its frame table
        has every frame; None means split (again). A plan of a newer format is refused, not rewritten."""
        import json

        from vidcolor.plan import PLAN_FORMAT

        key = self.layout.plan
        try:
            doc = self.store.get_json(key)
        except (KeyError, ValueError):
            return None
        if not isinstance(doc, dict):
            return None
        check_version(doc, key, PLAN_FORMAT)
        verified = verified_split(self.store, self.layout)
        if verified is None:
            return None
        plan_bytes, frames_bytes = verified
        try:
            plan = Plan.from_dict(json.loads(plan_bytes))
        except (KeyError, TypeError, ValueError):
            return None
        # the path may differ between invocations (a relative path, a staged copy); the rest may not
        if replace(plan.video, path="") != replace(self.job.info, path="") or plan.run_id != self.job.run_id:
            return None
        if frame_table_rows(frames_bytes) != plan.total_frames:
            return None
        return plan

    @names_disk_full
    def split(self) -> Plan:
        self.check_leases()
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

    # --- colorize and stitch, streamed -------------------------------------------------------
    @names_disk_full
    def colorize_and_stitch(self, plan: Plan, execution: ExecutionSettings) -> list[dict]:
        """Every chunk without a valid marker goes to the actor pool. As soon as a chunk and its
        neighbours in the scene are colorized, its stitch (blend, encode) starts in a thread. With
        the stabiliser on, each scene's pass follows the actors: forward over each chunk as soon as
        it and its neighbours are colorized, backward once the scene's last chunk is, and each
        chunk's stitch starts as soon as the backward pass has written its chroma. Encoding
        overlaps inference. Returns the segments in order.
        RunFailedError names the chunks quarantined after ``execution.max_attempts`` failures."""
        import threading
        from concurrent.futures import ThreadPoolExecutor

        from vidcolor.executor.ray_pool import colorize_chunks_on_actors
        from vidcolor.plan import completed_by, contributors, stitch_ready

        self.check_leases()
        chunks = list(plan.chunks)
        todo, reused = self.chunks_to_colorize(plan)
        done = {c.index for c in reused}
        progress.start("colorize", plan.total_frames)
        progress.advance("colorize", sum(c.core_frames for c in reused))
        progress.start("stitch", plan.total_frames)
        stitcher = ThreadPoolExecutor(max_workers=max(1, execution.stitch_parallelism),
                                      thread_name_prefix="vidcolor-stitch")
        lock = threading.Lock()
        stitching: dict = {}  # chunk index -> its stitch's future
        scene_jobs: list = []  # the futures of the scene passes' jobs
        passes = self.scenes_to_stabilize(plan)
        scene_of = {i: first for first, members in passes.items() for i in members}
        open_passes: dict = {}  # first chunk -> its ScenePass, while it runs
        finished: set[int] = set()  # first chunks of the scenes whose pass is done
        busy: set[int] = set()  # first chunks of the scenes with a pass job queued or running
        one_pass = threading.Lock()  # a pass step holds a chunk of arrays; one at a time bounds the memory

        def blend_ready(index: int) -> bool:
            return all(c.index in done for c in contributors(chunks, index))

        def start_ready(candidates) -> None:
            for index in candidates:
                if index in scene_of:
                    advance_scene(scene_of[index])
                elif index not in stitching and stitch_ready(chunks, index, done, passes):
                    with lock:
                        stitching[index] = stitcher.submit(self.stitch, plan, index)

        def ready_step(first: int) -> tuple | None:
            """(the scene's pass or None before it opens, the chunk it takes forward next or None
            for the backward pass) when that step can run now; None when it waits for the actors.
            Call with ``lock`` held."""
            scene = open_passes.get(first)
            nxt = passes[first][0] if scene is None else scene.next_forward
            return None if nxt is not None and not blend_ready(nxt) else (scene, nxt)

        def advance_scene(first: int) -> None:
            """Queue the scene's pass for its next step, if it has one ready and none queued."""
            with lock:
                if first in busy or first in finished or ready_step(first) is None:
                    return
                busy.add(first)
                scene_jobs.append(stitcher.submit(run_scene, first))

        def stitch_stable(index: int) -> None:
            with lock:
                stitching[index] = stitcher.submit(self.stitch, plan, index, True)

        def run_scene(first: int) -> None:
            """The scene pass's steps that are ready: forward over each chunk whose blended chroma
            is final, then, once the scene's last chunk has gone forward, the backward pass (its
            chunks' stitches start as it writes them)."""
            failed = False
            try:
                while True:
                    with lock:
                        step = ready_step(first)
                    if step is None:
                        break
                    scene, nxt = step
                    with one_pass:
                        if scene is None:
                            scene = open_passes[first] = self.open_scene_pass(plan, passes[first])
                        if nxt is None:
                            self.finish_scene_pass(scene, stitch_stable)
                            with lock:
                                finished.add(first)
                            break
                        self.scene_pass_forward(scene, nxt)
            except BaseException:
                failed = True  # the pass's state is not to be trusted: the run fails with this error
                raise
            finally:
                with lock:
                    busy.discard(first)
                    if failed:
                        finished.add(first)
            advance_scene(first)  # a chunk that became ready while this job was ending

        def raise_failed() -> None:
            with lock:
                futures = list(stitching.values()) + scene_jobs
            for future in futures:
                if future.done() and future.exception() is not None:
                    raise future.exception()

        def on_chunk_done(chunk, result) -> None:
            self.note_colorized(chunk.index)
            progress.advance("colorize", chunk.core_frames)
            failpoint("colorize")
            done.add(chunk.index)
            start_ready(completed_by(chunks, chunk.index))
            raise_failed()

        def on_actors(batch) -> dict:
            return colorize_chunks_on_actors(
                batch, self.actor_spec(execution), self.chunk_task, workers=execution.workers,
                gpus_per_worker=execution.gpus_per_worker, cpus_per_worker=execution.cpus_per_worker,
                max_attempts=execution.max_attempts, on_chunk_done=on_chunk_done)

        t0 = time.time()
        try:
            start_ready(range(len(chunks)))  # chunks whose neighbourhood an earlier invocation colorized
            try:
                quarantined = on_actors(todo)
                damaged = self.resplit_damaged(plan, quarantined)
                if damaged:
                    quarantined.update(on_actors([plan.chunks[i] for i in damaged]))
            finally:
                progress.finish("colorize")
                self.add_timing("colorize", time.time() - t0)
            if quarantined:
                raise self.quarantine(quarantined, execution.max_attempts)
            t1 = time.time()
            while True:  # a scene's pass may queue its next job as its current one ends
                with lock:
                    jobs = list(scene_jobs)
                for future in jobs:
                    future.result()
                with lock:
                    if len(scene_jobs) == len(jobs):
                        break
            segments = [stitching[c.index].result() for c in chunks]
            self.add_timing("stitch_tail", time.time() - t1)  # stitching left when the last chunk was colorized
        finally:
            stitcher.shutdown(wait=True, cancel_futures=True)
            for scene in open_passes.values():
                scene.close()
            progress.finish("stitch")
        return segments

    # --- the stabiliser's scene pass (vidcolor.stages.scene_stabilize) -------------------------
    def scenes_to_stabilize(self, plan: Plan) -> dict[int, list[int]]:
        """The scenes the stabiliser passes over, first chunk -> its chunks: it is on, no keyframe
        steers the scene (those chunks were smoothed and steered by their actor), and a segment of
        the scene is still to be stitched."""
        if self.job.chroma.stabilizer_strength <= 0:
            return {}
        chunks, steered = list(plan.chunks), self.keyframe_steering(plan)
        passes = {}
        for c in chunks:
            if c.index > 0 and chunks[c.index - 1].scene == c.scene:
                continue  # not its scene's first chunk
            members = scene_chunks(chunks, c.index)
            if any(i in steered for i in members):
                continue
            if not all(segment_is_done(self.store, self.layout, self.job.encode_key, i, chunks[i].core_frames,
                                       self.segment_keyframes(plan, i)) for i in members):
                passes[c.index] = members
        return passes

    def open_scene_pass(self, plan: Plan, members: list[int]):
        """A scene's pass to feed a chunk at a time (vidcolor.stages.scene_stabilize.ScenePass)."""
        from vidcolor.stabilize import StabilizerParams
        from vidcolor.stages.scene_stabilize import ScenePass

        return ScenePass(self.store, self.layout, plan, members,
                         StabilizerParams(strength=self.job.chroma.stabilizer_strength))

    @names_disk_full
    def scene_pass_forward(self, scene, index: int) -> None:
        self.check_leases()
        scene.forward(index)

    @names_disk_full
    def finish_scene_pass(self, scene, on_stable=None) -> dict:
        self.check_leases()
        return scene.finish(on_stable)

    @names_disk_full
    def stabilize_scene(self, plan: Plan, members: list[int]) -> dict:
        """Stabilise one scene's blended chroma for its stitches. Safe in parallel threads."""
        from vidcolor.stabilize import StabilizerParams
        from vidcolor.stages.scene_stabilize import stabilize_scene

        self.check_leases()
        return stabilize_scene(self.store, self.layout, plan, members,
                               StabilizerParams(strength=self.job.chroma.stabilizer_strength))

    def chunks_to_colorize(self, plan: Plan) -> tuple[list, list]:
        """(to do, reused): a chunk is reused only when its marker's checksum matches its chroma."""
        todo, reused = [], []
        steer = self.keyframe_steering(plan)
        for c in plan.chunks:
            digest = steer[c.index].digest if c.index in steer else ""
            (reused if chunk_is_done(self.store, self.layout, c.index, c.ext_frames, digest) else todo).append(c)
        self.record.current.chunks_reused = [c.index for c in reused]
        for c in reused:  # done since it was quarantined (e.g. by an invocation that was killed after)
            self.record.quarantined.pop(str(c.index), None)
        self._save()
        return todo, reused

    def note_colorized(self, index: int) -> None:
        self.record.current.chunks_colorized.append(index)
        self.record.quarantined.pop(str(index), None)
        self._save()

    def resplit_damaged(self, plan: Plan, quarantined: dict[int, str]) -> list[int]:
        """Chunks quarantined because their source in the store is missing or fails its digest
        are split again from the film and taken out of ``quarantined``; returns them, to be
        colorized again."""
        damaged = sorted(i for i, error in quarantined.items() if DAMAGED_SOURCE in error)
        if damaged:
            from vidcolor.stages.split import rewrite_chunk_sources

            progress.notice(f"chunk {', '.join(map(str, damaged))}: source in the store is damaged; splitting "
                            "those chunks again")
            rewrite_chunk_sources(self.store, self.layout, plan, self.job.source_path, damaged)
            for i in damaged:
                quarantined.pop(i)
        return damaged

    def quarantine(self, quarantined: dict[int, str], max_attempts: int) -> RunFailedError:
        """Record the quarantined chunks; the error that ends the run, naming them (a full disk
        met by the actors as one DiskFullError line)."""
        self.record.quarantined.update({str(k): v for k, v in sorted(quarantined.items())})
        self._save()
        first = min(quarantined)
        if is_disk_full(quarantined[first]):  # the store's disk, as the actors met it
            return DiskFullError(self.job.store_uri)
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
    @names_disk_full
    def stitch(self, plan: Plan, index: int, stabilized: bool = False) -> dict:
        """One chunk's segment (reused when its marker checks out). Safe in parallel threads:
        it writes no run.json. ``stabilized``: its scene's stabiliser pass has written its chroma."""
        from vidcolor.stages.stitch import stitch_chunk

        self.check_leases()
        chunk = plan.chunks[index]
        job = self.job
        keyframes = self.segment_keyframes(plan, index)
        if segment_is_done(self.store, self.layout, job.encode_key, index, chunk.core_frames, keyframes):
            progress.advance("stitch", chunk.core_frames)
            return {"chunk": index, "frames": chunk.core_frames, "reused": True}
        return stitch_chunk(self.store, self.layout, plan, index, job.source_path, job.encode, job.encode_key,
                            on_frames=progress.advancer("stitch"), keyframes=keyframes, stabilized=stabilized)

    # --- concat + mux ------------------------------------------------------------------------
    @names_disk_full
    def finalize(self, plan: Plan, segments: list[dict]) -> dict:
        from vidcolor import recovery
        from vidcolor.stages.finalize import finalize_output

        job = self.job
        t0 = time.time()
        result = finalize_output(self.store, self.layout, plan, job.encode_key, job.encode.codec, job.output_uri,
                                 job.info, before_publish=self.check_leases)
        self.add_timing("concat_mux", time.time() - t0)
        self.add_timing("stitch_chunk_seconds", sum(s.get("seconds", 0.0) for s in segments))
        from vidcolor.report import run_temporal_summary

        self.record.current.summary["temporal"] = run_temporal_summary(self.store, self.layout, plan)  # CDC, seams
        started = self.record.current.started_at
        self._finish("succeeded", output=job.output_uri, wall_seconds=round(time.time() - started, 3))
        recovery.release_leases(self.store, job)
        return {**result, "run_id": job.run_id}

