"""Concat + mux: segments joined by stream copy, source audio/subtitles/metadata mapped back,
the output written atomically."""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor.pipeline import Job
from vidcolor.report import run_temporal_summary
from vidcolor.runstate import RunRecord
from vidcolor.stages.finalize import finalize_output
from vidcolor.store import open_store


@task(name="concat-mux", cache_policy=NO_CACHE)
def concat_and_mux(job: Job, plan: dict, segments: list[dict]) -> dict:
    store = open_store(job.store_uri)
    t0 = time.time()
    result = finalize_output(store, job.layout, plan, job.encode_key, job.encode.codec, job.output_uri, job.info)
    record = RunRecord(store, job.layout)
    record.add_timing("concat_mux", time.time() - t0)
    record.add_timing("stitch_chunk_seconds", sum(s.get("seconds", 0.0) for s in segments))
    record.data["temporal"] = run_temporal_summary(store, job.layout, plan)  # CDC and seams at render size
    started = record.current.get("started_at", time.time())
    record.finish("succeeded", output=job.output_uri, wall_seconds=round(time.time() - started, 3))
    return {**result, "run_id": job.run_id}
