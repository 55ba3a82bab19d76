"""One film: probe -> split -> colorize (Ray actors) -> stitch (per chunk) -> concat + mux."""

from __future__ import annotations

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.colorize import colorize_chunks
from tasks.mux import concat_and_mux
from tasks.prepare import mark_run_failed, prepare_run
from tasks.split import split_into_chunks
from tasks.stitch import stitch_segment
from vidcolor import progress
from vidcolor.job import Job
from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings


# Parameters are validated so a deployment run (plain JSON) gets the settings dataclasses back.
@flow(name="colorize-film", task_runner=ThreadPoolTaskRunner(max_workers=2))
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
        colorize_chunks(job, plan, execution)
        progress.start("stitch", plan.total_frames)
        segments = stitch_segment.map(unmapped(job), unmapped(plan), range(len(plan.chunks))).result()
        progress.finish("stitch")
        result = concat_and_mux(job, plan, segments)
    except BaseException as e:
        mark_run_failed(job, str(e))
        raise
    return result


def run_colorize_film(input_uri: str, output_uri: str, chroma: ChromaSettings, encode: EncodeSettings,
                      execution: ExecutionSettings, store_uri: str | None = None, job: Job | None = None) -> dict:
    """Run the flow with the stitch parallelism the caller asked for."""
    runner = ThreadPoolTaskRunner(max_workers=max(1, execution.stitch_parallelism))
    return colorize_film.with_options(task_runner=runner)(
        input_uri, output_uri, chroma=chroma, encode=encode, execution=execution, store_uri=store_uri, job=job
    )
