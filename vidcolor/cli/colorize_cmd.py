"""``vidcolor colorize``: one film through the Prefect flow on Ray actors."""

from __future__ import annotations

import json
from typing import Optional

import typer

from vidcolor.cli._common import (REFERENCE_HELP, REFERENCE_STRENGTH_HELP, RichProgress, fail, quiet_services,
                                  reference_palette)
from vidcolor.errors import VidcolorError
from vidcolor.settings import CODECS, ChromaSettings, EncodeSettings, ExecutionSettings


def colorize(
    input: str = typer.Argument(..., help="Grayscale film: a local path or s3://bucket/key."),
    output: str = typer.Option(..., "-o", "--output", help="Colorized film (.mp4, .mkv or .mov): a local path or s3:// URI. Written atomically; never the input."),
    store: Optional[str] = typer.Option(None, "--store", help="Run-state root: a folder or s3://bucket/prefix. Default: $VIDCOLOR_STORE or ~/.cache/vidcolor/store."),
    model: str = typer.Option("default", "--model", help="Colorizer: 'default' (shipped GAN), a .safetensors path, or test:NAME."),
    workers: int = typer.Option(1, "--workers", min=1, help="Colorizer actors (each loads the model once)."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="GPUs per actor; fractions share a GPU (e.g. 0.5). 0 = CPU."),
    cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker", min=0.1, help="CPUs per actor (its torch threads)."),
    render_size: int = typer.Option(256, "--render-size", help="Short side, in pixels, of the frames the model sees; chroma is upsampled to full size."),
    max_chunk_frames: int = typer.Option(240, "--max-chunk-frames", help="Longest chunk (core frames); chunks also end at every hard cut."),
    overlap_frames: int = typer.Option(8, "--overlap-frames", help="Frames colorized twice on each side of a chunk boundary inside a scene, then blended."),
    temporal_attention: bool = typer.Option(True, "--temporal-attention/--no-temporal-attention", help="Let the model see the neighbouring frames of the same scene (off: frame by frame)."),
    stabilize: bool = typer.Option(True, "--stabilize/--no-stabilize", help="Flow-guided chroma stabiliser: colours follow the film's motion instead of flickering."),
    stabilize_strength: float = typer.Option(0.97, "--stabilize-strength", help="How strongly colours are carried along the motion where it is trusted: 0-1."),
    reference: Optional[str] = typer.Option(None, "--reference", help=REFERENCE_HELP),
    reference_strength: float = typer.Option(1.0, "--reference-strength", help=REFERENCE_STRENGTH_HELP),
    codec: str = typer.Option("h264", "--codec", help=f"Video codec: {', '.join(CODECS)} (ffv1 = lossless, prores = archive master)."),
    crf: Optional[int] = typer.Option(None, "--crf", help="Quality for h264/hevc (lower = better; default 16 / 18); qscale for prores."),
    stitch_parallelism: int = typer.Option(2, "--stitch-parallelism", min=1, help="Chunks stitched and encoded at once."),
    max_attempts: int = typer.Option(3, "--max-attempts", min=1, help="Tries per chunk before it is quarantined."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect and Ray logs."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Colorize a black-and-white film. Running the same command again resumes it."""
    quiet_services(verbose)
    encode = EncodeSettings(codec=codec, crf=crf)
    execution = ExecutionSettings(workers=workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
                                  stitch_parallelism=stitch_parallelism, max_attempts=max_attempts)
    try:
        from vidcolor.pipeline import check_request

        # the palette, not the file, is the setting: the run id then follows the colours, and no
        # Ray node needs to see the reference photo
        palette = reference_palette(reference, reference_strength).to_text() if reference else ""
        chroma = ChromaSettings(model=model, render_size=render_size, max_chunk_frames=max_chunk_frames,
                                overlap_frames=overlap_frames, palette=palette, palette_strength=reference_strength,
                                temporal_attention=temporal_attention, stabilize=stabilize,
                                stabilize_strength=stabilize_strength)

        # Check input, output and settings before Prefect and Ray start: bad input costs
        # milliseconds, not a cluster. The flow's probe task then names the run.
        check_request(input, output, chroma, encode)
        from flows.colorize_film import run_colorize_film
        from tasks.colorizer_actor import ensure_ray
        from vidcolor import progress

        # Connect (or start local Ray) from the main thread; Prefect runs tasks in worker threads.
        ensure_ray(workers * cpus_per_worker)

        with RichProgress() as bar:
            progress.set_sink(bar)
            result = run_colorize_film(input, output, chroma, encode, execution, store)
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
