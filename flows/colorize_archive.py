"""An archive batch: its films in flight together on one shared colorizer pool; a film that fails
is reported and the others go on; running the batch again skips finished films and resumes the rest."""

from __future__ import annotations

from prefect import flow

from tasks.archive import list_films, run_films
from vidcolor.archive import report_uri
from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings


@flow(name="colorize-archive")
def colorize_archive(
    source: list[str] | str,
    output_prefix: str,
    suffix: str = ".mp4",
    chroma: ChromaSettings = ChromaSettings(),
    encode: EncodeSettings = EncodeSettings(),
    execution: ExecutionSettings = ExecutionSettings(),
    store_uri: str | None = None,
    films_in_flight: int = 2,
    report: str | None = None,
) -> dict:
    """``source``: films one by one, or one manifest (.csv / .parquet), folder, s3:// prefix or
    text list. ``report``: where the Parquet report goes (default OUTPUT_PREFIX/vidcolor-report.parquet)."""
    films = list_films(source, output_prefix, suffix, chroma, encode)
    label = source if isinstance(source, str) else ",".join(source)
    return run_films(films, label, store_uri, execution, films_in_flight, report or report_uri(output_prefix))
