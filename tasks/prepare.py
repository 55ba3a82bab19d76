"""Probe: check the request once, name the run, open this invocation in run.json."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor.job import Job, prepare_job
from vidcolor.run import Run
from vidcolor.settings import ChromaSettings, EncodeSettings


@task(name="probe", cache_policy=NO_CACHE)
def prepare_run(input_uri: str, output_uri: str, chroma: ChromaSettings, encode: EncodeSettings,
                store_uri: str | None, job: Job | None = None) -> Job:
    """``job``: the request already checked by the caller (the CLI), so it is not checked twice."""
    job = job or prepare_job(input_uri, output_uri, chroma, encode, store_uri)
    Run(job).start()
    return job


@task(name="mark-failed", cache_policy=NO_CACHE)
def mark_run_failed(job: Job, error: str) -> None:
    Run(job).fail(error)
