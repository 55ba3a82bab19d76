"""``vidcolor batch``: colorize many films (an archive job) through the archive flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from vidcolor.cli._common import RichProgress, fail, quiet_services
from vidcolor.errors import BadInputError, VidcolorError
from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings


def batch(
    inputs: list[str] = typer.Argument(..., help="Films (paths or s3:// URIs), or one text file listing them, one a line."),
    output: str = typer.Option(..., "-o", "--output", help="Output folder or s3://bucket/prefix; each film becomes NAME-colour.SUFFIX."),
    suffix: str = typer.Option(".mp4", "--suffix", help="Output container: .mp4, .mkv or .mov."),
    store: Optional[str] = typer.Option(None, "--store", help="Run-state root (folder or s3://bucket/prefix)."),
    model: str = typer.Option("default", "--model", help="Colorizer spec (see vidcolor colorize --help)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Colorizer actors."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="GPUs per actor."),
    codec: str = typer.Option("h264", "--codec", help="h264, hevc, ffv1 or prores."),
    crf: Optional[int] = typer.Option(None, "--crf", help="Quality for h264/hevc."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect and Ray logs."),
) -> None:
    """Colorize a list of films; failures are reported per film and the batch goes on. Run the
    same command again to resume every unfinished film."""
    quiet_services(verbose)
    if len(inputs) == 1 and inputs[0].endswith(".txt") and Path(inputs[0]).is_file():
        inputs = [ln.strip() for ln in Path(inputs[0]).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    try:
        if not inputs:
            raise BadInputError("inputs", "no films given")
        if not output.startswith("s3://") and not Path(output).is_dir():
            raise BadInputError(output, "output folder does not exist")
        chroma, encode = ChromaSettings(model=model), EncodeSettings(codec=codec, crf=crf)
        from vidcolor.pipeline import check_settings

        check_settings(chroma, encode)  # one bad setting would fail every film: say so once, up front
        from flows.colorize_archive import colorize_archive
        from vidcolor import progress

        with RichProgress() as bar:
            progress.set_sink(bar)
            result = colorize_archive(inputs, output, suffix=suffix, chroma=chroma, encode=encode,
                                      execution=ExecutionSettings(workers=workers, gpus_per_worker=gpus_per_worker),
                                      store_uri=store)
    except VidcolorError as e:
        fail(e)
        return
    typer.echo(json.dumps({"succeeded": sorted(result["succeeded"]), "failed": result["failed"]}, indent=2))
    if result["failed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
