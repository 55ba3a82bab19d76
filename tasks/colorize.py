"""Colorize and stitch: chunks without a valid done-marker go to the Ray actor pool; each chunk is
stitched (blended, encoded) as soon as it and its neighbours are colorized."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor.job import Job
from vidcolor.plan import Plan
from vidcolor.run import Run
from vidcolor.settings import ExecutionSettings


@task(name="colorize-stitch", cache_policy=NO_CACHE)
def colorize_and_stitch(job: Job, plan: Plan, execution: ExecutionSettings) -> list[dict]:
    return Run(job).colorize_and_stitch(plan, execution)
