"""Concat + mux: segments joined by stream copy, source audio/subtitles/metadata mapped back,
the output written atomically."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor.job import Job
from vidcolor.plan import Plan
from vidcolor.run import Run


@task(name="concat-mux", cache_policy=NO_CACHE)
def concat_and_mux(job: Job, plan: Plan, segments: list[dict]) -> dict:
    return Run(job).finalize(plan, segments)
