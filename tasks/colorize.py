"""Colorize: every chunk without a valid done-marker goes to the Ray actor pool."""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.colorizer_actor import colorize_chunks_on_actors
from vidcolor import progress
from vidcolor.errors import RunFailedError
from vidcolor.pipeline import Job
from vidcolor.plan import chunk_from_dict
from vidcolor.runstate import RunRecord, chunk_is_done
from vidcolor.settings import ExecutionSettings
from vidcolor.store import open_store


@task(name="colorize", cache_policy=NO_CACHE)
def colorize_chunks(job: Job, plan: dict, execution: ExecutionSettings) -> dict:
    store = open_store(job.store_uri)
    record = RunRecord(store, job.layout)
    chunks = [chunk_from_dict(d) for d in plan["chunks"]]
    todo, reused = [], []
    for c in chunks:
        (reused if chunk_is_done(store, job.layout, c.index, c.ext_frames) else todo).append(c)
    record.current["chunks_reused"] = [c.index for c in reused]
    record.save()
    progress.start("colorize", plan["total_frames"])
    progress.advance("colorize", sum(c.core_frames for c in reused))

    def on_chunk_done(chunk, result):
        record.current["chunks_colorized"].append(chunk.index)
        record.save()
        progress.advance("colorize", chunk.core_frames)

    t0 = time.time()
    try:
        quarantined = colorize_chunks_on_actors(
            todo,
            model_spec=job.chroma.model,
            store_uri=job.store_uri,
            run_id=job.run_id,
            full_range=job.info.full_range,
            workers=execution.workers,
            gpus_per_worker=execution.gpus_per_worker,
            cpus_per_worker=execution.cpus_per_worker,
            batch_size=execution.batch_size,
            max_attempts=execution.max_attempts,
            on_chunk_done=on_chunk_done,
            palette=job.chroma.palette,
            palette_strength=job.chroma.palette_strength,
            temporal_attention=job.chroma.temporal_attention,
            stabilize_strength=job.chroma.stabilizer_strength,
        )
    finally:
        progress.finish("colorize")
        record.add_timing("colorize", time.time() - t0)
    if quarantined:
        record.data["quarantined"] = {str(k): v for k, v in sorted(quarantined.items())}
        record.save()
        first = min(quarantined)
        names = ", ".join(str(i) for i in sorted(quarantined))
        raise RunFailedError(
            job.input_uri,
            f"chunk {names} failed {execution.max_attempts} times and was quarantined "
            f"(last error of chunk {first}: {quarantined[first]}); run again to retry only the missing chunks",
        )
    return {"colorized": len(todo), "reused": len(reused)}
