"""``vidcolor batch``: colorize many films (an archive job) through the archive flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from vidcolor.cli._common import Opt, RichProgress, fail, quiet_services, run_settings
from vidcolor.errors import BadInputError, VidcolorError


def batch(
    inputs: list[str] = typer.Argument(..., help="Films (paths or s3:// URIs), or one text file listing them, one a line."),
    output: str = typer.Option(..., "-o", "--output", help="Output folder or s3://bucket/prefix; each film becomes NAME-colour.SUFFIX."),
    suffix: str = typer.Option(".mp4", "--suffix", help="Output container: .mp4, .mkv or .mov."),
    store: Optional[str] = Opt.store,
    model: str = Opt.model,
    workers: int = Opt.workers,
    gpus_per_worker: float = Opt.gpus_per_worker,
    cpus_per_worker: float = Opt.cpus_per_worker,
    render_size: int = Opt.render_size,
    max_chunk_frames: int = Opt.max_chunk_frames,
    overlap_frames: int = Opt.overlap_frames,
    reference: Optional[str] = Opt.reference,
    reference_strength: float = Opt.reference_strength,
    codec: str = Opt.codec,
    crf: Optional[int] = Opt.crf,
    stitch_parallelism: int = Opt.stitch_parallelism,
    max_attempts: int = Opt.max_attempts,
    verbose: bool = Opt.verbose,
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
        chroma, encode, execution = run_settings(
            model=model, render_size=render_size, max_chunk_frames=max_chunk_frames, overlap_frames=overlap_frames,
            reference=reference, reference_strength=reference_strength, codec=codec, crf=crf, workers=workers,
            gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
            stitch_parallelism=stitch_parallelism, max_attempts=max_attempts)
        from vidcolor.job import check_settings

        check_settings(chroma, encode)  # one bad setting would fail every film: say so once, up front
        from flows.colorize_archive import colorize_archive
        from vidcolor import progress
        from vidcolor.executor.ray_runtime import ensure_ray

        ensure_ray(workers * cpus_per_worker)  # from the main thread, as colorize does
        with RichProgress() as bar:
            progress.set_sink(bar)
            result = colorize_archive(inputs, output, suffix=suffix, chroma=chroma, encode=encode,
                                      execution=execution, store_uri=store)
    except VidcolorError as e:
        fail(e)
        return
    typer.echo(json.dumps({"succeeded": sorted(result["succeeded"]), "failed": result["failed"]}, indent=2))
    if result["failed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
