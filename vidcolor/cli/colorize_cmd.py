"""``vidcolor colorize``: one film through the Prefect flow on Ray actors."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Optional

import typer

from vidcolor.cli._common import Opt, RichProgress, fail, quiet_services, run_settings, start_services
from vidcolor.errors import VidcolorError


def colorize(
    input: str = typer.Argument(..., help="Grayscale film: a local path or s3://bucket/key."),
    output: str = typer.Option(..., "-o", "--output", help="Colorized film (.mp4, .mkv or .mov): a local path or s3:// URI. Written atomically; never the input."),
    store: Optional[str] = Opt.store,
    model: str = Opt.model,
    workers: int = Opt.workers,
    gpus_per_worker: float = Opt.gpus_per_worker,
    cpus_per_worker: float = Opt.cpus_per_worker,
    render_size: int = Opt.render_size,
    max_chunk_frames: int = Opt.max_chunk_frames,
    overlap_frames: int = Opt.overlap_frames,
    temporal_attention: bool = Opt.temporal_attention,
    stabilize: bool = Opt.stabilize,
    stabilize_strength: float = Opt.stabilize_strength,
    reference: Optional[str] = Opt.reference,
    reference_strength: float = Opt.reference_strength,
    keyframes: Optional[str] = typer.Option(
        None, "--keyframes", help="Folder of colour keyframes named by 0-based frame index (000120.png, 120.jpg), "
        "at the film's aspect ratio: each steers its own scene (make grey ones to paint with `vidcolor keyframes`)."),
    keyframe_palette: bool = typer.Option(
        True, "--keyframe-palette/--no-keyframe-palette",
        help="Scenes without a keyframe lean towards the palette of the nearest keyframe (off: fully automatic)."),
    codec: str = Opt.codec,
    crf: Optional[int] = Opt.crf,
    stitch_parallelism: int = Opt.stitch_parallelism,
    max_attempts: int = Opt.max_attempts,
    verbose: bool = Opt.verbose,
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Colorize a black-and-white film. Running the same command again resumes it."""
    quiet_services(verbose)
    try:
        chroma, encode, execution = run_settings(
            model=model, render_size=render_size, max_chunk_frames=max_chunk_frames, overlap_frames=overlap_frames,
            reference=reference, reference_strength=reference_strength, codec=codec, crf=crf, workers=workers,
            gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
            stitch_parallelism=stitch_parallelism, max_attempts=max_attempts, temporal_attention=temporal_attention,
            stabilize=stabilize, stabilize_strength=stabilize_strength, keyframes=keyframes or "",
            keyframe_palette=keyframe_palette)
        from vidcolor.job import prepare_job

        # Checked once, before Prefect and Ray start: bad input costs milliseconds, not a cluster.
        job = prepare_job(input, output, chroma, encode, store)
        from vidcolor.run import Run

        def prestart() -> None:  # the actors load the model while Prefect and the flow start and the film is split
            from vidcolor.executor.ray_pool import prestart_actors

            prestart_actors(Run(job).actor_spec(execution), workers=execution.workers,
                            gpus_per_worker=execution.gpus_per_worker, cpus_per_worker=execution.cpus_per_worker)

        start_services(execution.workers * execution.actor_cpus, on_ray_ready=prestart)
        from flows.colorize_film import run_colorize_film  # Prefect is imported by now (start_services)
        from vidcolor import progress

        # stdout carries only our result: what Ray and Prefect print on the way goes to stderr
        with RichProgress() as bar, contextlib.redirect_stdout(sys.stderr):
            progress.set_sink(bar)
            result = run_colorize_film(input, output, chroma, encode, execution, store, job=job)
    except VidcolorError as e:
        fail(e)
        return
    except KeyboardInterrupt:
        typer.echo("vidcolor: interrupted; run the same command again to resume", err=True)
        raise typer.Exit(130)
    if json_out:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"wrote {result['output']} ({result['frames']} frames, run {result['run_id']})")


def register(app: typer.Typer) -> None:
    app.command("colorize")(colorize)
