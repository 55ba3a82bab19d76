"""Stitch: one task per chunk (blend overlaps, join with the source luma, encode a segment)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor import progress
from vidcolor.pipeline import Job
from vidcolor.plan import chunk_from_dict
from vidcolor.runstate import segment_is_done
from vidcolor.stages.stitch import stitch_chunk
from vidcolor.store import open_store


@task(name="stitch", cache_policy=NO_CACHE)
def stitch_segment(job: Job, plan: dict, index: int) -> dict:
    store = open_store(job.store_uri)
    chunk = chunk_from_dict(plan["chunks"][index])
    if segment_is_done(store, job.layout, job.encode_key, index, chunk.core_frames):
        progress.advance("stitch", chunk.core_frames)
        return {"chunk": index, "frames": chunk.core_frames, "reused": True}
    return stitch_chunk(store, job.layout, plan, index, job.source_path, job.encode, job.encode_key,
                        on_frames=progress.advancer("stitch"))
