"""An archive batch: many films, each through the one-film flow as a subflow. A film that fails
is reported and the batch goes on; running the batch again resumes every unfinished film."""

from __future__ import annotations

from prefect import flow

from flows.colorize_film import colorize_film
from vidcolor.errors import VidcolorError
from vidcolor.job import archive_output_uri
from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings


@flow(name="colorize-archive")
def colorize_archive(
    inputs: list[str],
    output_prefix: str,
    suffix: str = ".mp4",
    chroma: ChromaSettings = ChromaSettings(),
    encode: EncodeSettings = EncodeSettings(),
    execution: ExecutionSettings = ExecutionSettings(),
    store_uri: str | None = None,
) -> dict:
    succeeded: dict[str, dict] = {}
    failed: dict[str, str] = {}
    for input_uri in inputs:
        output_uri = archive_output_uri(input_uri, output_prefix, suffix)
        try:
            succeeded[input_uri] = colorize_film(input_uri, output_uri, chroma=chroma, encode=encode,
                                                 execution=execution, store_uri=store_uri)
        except VidcolorError as e:
            failed[input_uri] = str(e)
    return {"succeeded": succeeded, "failed": failed}
