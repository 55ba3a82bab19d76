"""Split: scene cuts and chunk sources, or the plan of an earlier split of this run."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor.job import Job
from vidcolor.plan import Plan
from vidcolor.run import Run


@task(name="split", cache_policy=NO_CACHE)
def split_into_chunks(job: Job) -> Plan:
    return Run(job).split()
