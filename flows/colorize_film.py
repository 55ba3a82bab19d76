"""One film: probe -> split -> colorize on Ray actors, each chunk stitched as soon as its
neighbourhood is colorized -> concat + mux."""

from __future__ import annotations

from prefect import flow

from tasks.colorize import colorize_and_stitch
from tasks.mux import concat_and_mux
from tasks.prepare import mark_run_failed, prepare_run
from tasks.split import split_into_chunks
from vidcolor.job import Job
from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings


# Parameters are validated so a deployment run (plain JSON) gets the settings dataclasses back.
@flow(name="colorize-film")
def colorize_film(
    input_uri: str,
    output_uri: str,
    chroma: ChromaSettings = ChromaSettings(),
    encode: EncodeSettings = EncodeSettings(),
    execution: ExecutionSettings = ExecutionSettings(),
    store_uri: str | None = None,
    job: Job | None = None,
) -> dict:
    """``job``: the request already checked (the CLI passes it); a deployment leaves it out."""
    job = prepare_run(input_uri, output_uri, chroma, encode, store_uri, job)
    try:
        plan = split_into_chunks(job)
        segments = colorize_and_stitch(job, plan, execution)
        result = concat_and_mux(job, plan, segments)
    except BaseException as e:
        mark_run_failed(job, str(e))
        raise
    return result


def run_colorize_film(input_uri: str, output_uri: str, chroma: ChromaSettings, encode: EncodeSettings,
                      execution: ExecutionSettings, store_uri: str | None = None, job: Job | None = None) -> dict:
    return colorize_film(input_uri, output_uri, chroma=chroma, encode=encode, execution=execution,
                         store_uri=store_uri, job=job)
