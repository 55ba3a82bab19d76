"""Colorize: every chunk without a valid done-marker goes to the Ray actor pool."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor.job import Job
from vidcolor.plan import Plan
from vidcolor.run import Run
from vidcolor.settings import ExecutionSettings


@task(name="colorize", cache_policy=NO_CACHE)
def colorize_chunks(job: Job, plan: Plan, execution: ExecutionSettings) -> dict:
    return Run(job).colorize(plan, execution)
