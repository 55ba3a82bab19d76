"""Split: scene cuts and chunk sources, or the existing plan when this run was split before."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor import progress
from vidcolor.pipeline import Job
from vidcolor.runstate import RunRecord
from vidcolor.stages.split import split_film
from vidcolor.store import open_store


@task(name="split", cache_policy=NO_CACHE)
def split_into_chunks(job: Job) -> dict:
    store = open_store(job.store_uri)
    try:
        return store.get_json(job.layout.plan)  # written last by a finished split: safe to reuse
    except KeyError:
        pass
    progress.start("split", job.info.frame_count_header or 0)
    try:
        plan = split_film(store, job.layout, job.source_path, job.info, job.chroma, job.size_multiple,
                          on_frames=progress.advancer("split"))
    finally:
        progress.finish("split")
    RunRecord(store, job.layout).add_timing("split", plan["split_seconds"])
    return plan
