"""Stitch: one task per chunk (blend overlaps, join with the source luma, encode a segment)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor.job import Job
from vidcolor.plan import Plan
from vidcolor.run import Run


@task(name="stitch", cache_policy=NO_CACHE)
def stitch_segment(job: Job, plan: Plan, index: int) -> dict:
    return Run(job).stitch(plan, index)
