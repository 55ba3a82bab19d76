"""Probe: check the request, probe the film, fingerprint it, name the run; open run.json."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor.pipeline import Job, prepare_job
from vidcolor.runstate import RunRecord
from vidcolor.settings import ChromaSettings, EncodeSettings
from vidcolor.store import open_store


@task(name="probe", cache_policy=NO_CACHE)
def prepare_run(input_uri: str, output_uri: str, chroma: ChromaSettings, encode: EncodeSettings, store_uri: str | None) -> Job:
    job = prepare_job(input_uri, output_uri, chroma, encode, store_uri)
    RunRecord(open_store(job.store_uri), job.layout).start_invocation(
        {"input": input_uri, "output": output_uri, "model": job.model_identity, "encode_key": job.encode_key,
         "chroma": job.chroma.key(job.model_identity)}  # what the run id was made of, readable
    )
    return job


@task(name="mark-failed", cache_policy=NO_CACHE)
def mark_run_failed(job: Job, error: str) -> None:
    RunRecord(open_store(job.store_uri), job.layout).finish("failed", error=error)
