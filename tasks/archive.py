"""Archive batch: read the batch's films, then run them on one shared colorizer pool."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from vidcolor.archive import FilmRequest, film_requests, list_source
from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings


@task(name="list-films", cache_policy=NO_CACHE)
def list_films(source: list[str] | str, output_prefix: str, suffix: str, chroma: ChromaSettings,
               encode: EncodeSettings) -> list[FilmRequest]:
    return film_requests(list_source(source), output_prefix, suffix, chroma, encode)


@task(name="run-batch", cache_policy=NO_CACHE)
def run_films(films: list[FilmRequest], source: str, store_uri: str | None, execution: ExecutionSettings,
              films_in_flight: int, report: str) -> dict:
    from vidcolor.executor.archive_runner import run_batch

    return run_batch(films, source, store_uri, execution, films_in_flight, report)
