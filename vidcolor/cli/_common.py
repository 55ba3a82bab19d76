"""Shared CLI plumbing: one-line errors, quiet third-party logging, the progress bar."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import typer

from vidcolor import progress
from vidcolor.errors import VidcolorError
from vidcolor.media.codecs import codec_help, quality_help


REFERENCE_HELP = ("A colour photo to take the palette from (a production still, a colour frame of the "
                  "same scene): the model leans towards its colours where it is unsure.")
REFERENCE_STRENGTH_HELP = "How hard to lean towards the --reference palette: 0 = not at all, 1 = as measured, up to 3."


def reference_palette(reference, strength: float):
    """The ``--reference`` photo's palette (``vidcolor.palette.Palette``); BadInputError naming
    the file or option."""
    from vidcolor.errors import BadInputError
    from vidcolor.job import check_palette_strength
    from vidcolor.media.still import read_image_rgb
    from vidcolor.palette import palette_from_rgb

    check_palette_strength(strength)
    try:
        palette = palette_from_rgb(read_image_rgb(reference))
    except ValueError as exc:
        raise BadInputError("--reference", str(exc)) from None
    if palette.cells == ((0, 0, 1.0),):
        raise BadInputError("--reference", f"{reference}: the reference has no colour (it is grey)")
    return palette


# Options shared by `colorize` and `batch` (one definition each, so the two never drift apart).
class Opt:
    store = typer.Option(None, "--store", help="Run-state root: a folder or s3://bucket/prefix. Default: $VIDCOLOR_STORE or ~/.cache/vidcolor/store.")
    model = typer.Option("default", "--model", help="Colorizer: 'default' (shipped GAN), a .safetensors path, or test:NAME.")
    workers = typer.Option(1, "--workers", min=1, help="Colorizer actors (each loads the model once).")
    gpus_per_worker = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="GPUs per actor; fractions share a GPU (e.g. 0.5). 0 = CPU.")
    cpus_per_worker = typer.Option(0.0, "--cpus-per-worker", min=0.0, help="CPUs per actor (its torch threads); 0 = the node's cores shared by its actors.")
    render_size = typer.Option(256, "--render-size", help="Short side, in pixels, of the frames the model sees; chroma is upsampled to full size.")
    max_chunk_frames = typer.Option(240, "--max-chunk-frames", help="Longest chunk (core frames); chunks also end at every hard cut.")
    overlap_frames = typer.Option(8, "--overlap-frames", help="Frames colorized twice on each side of a chunk boundary inside a scene, then blended.")
    temporal_attention = typer.Option(True, "--temporal-attention/--no-temporal-attention", help="Let the model see the neighbouring frames of the same scene (off: frame by frame).")
    stabilize = typer.Option(True, "--stabilize/--no-stabilize", help="Flow-guided chroma stabiliser: colours follow the film's motion instead of flickering.")
    stabilize_strength = typer.Option(0.97, "--stabilize-strength", help="How strongly colours are carried along the motion where it is trusted: 0-1.")
    reference = typer.Option(None, "--reference", help=REFERENCE_HELP)
    reference_strength = typer.Option(1.0, "--reference-strength", help=REFERENCE_STRENGTH_HELP)
    codec = typer.Option("h264", "--codec", help=codec_help())
    crf = typer.Option(None, "--crf", help=quality_help())
    stitch_parallelism = typer.Option(2, "--stitch-parallelism", min=1, help="Chunks stitched and encoded at once.")
    max_attempts = typer.Option(3, "--max-attempts", min=1, help="Tries per chunk before it is quarantined.")
    verbose = typer.Option(False, "--verbose", "-v", help="Show Prefect and Ray logs.")


def run_settings(*, model, render_size, max_chunk_frames, overlap_frames, reference, reference_strength, codec, crf,
                 workers, gpus_per_worker, cpus_per_worker, stitch_parallelism, max_attempts, temporal_attention=True,
                 stabilize=True, stabilize_strength=0.97, keyframes="", keyframe_palette=True):
    """(ChromaSettings, EncodeSettings, ExecutionSettings) of the shared options. The palette,
    not the file, is the setting: the run id then follows the colours, and no Ray node needs to
    see the reference photo."""
    from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings

    palette = reference_palette(reference, reference_strength).to_text() if reference else ""
    chroma = ChromaSettings(model=model, render_size=render_size, max_chunk_frames=max_chunk_frames,
                            overlap_frames=overlap_frames, palette=palette, palette_strength=reference_strength,
                            temporal_attention=temporal_attention, stabilize=stabilize,
                            stabilize_strength=stabilize_strength, keyframes=keyframes or "",
                            keyframe_palette=keyframe_palette)
    execution = ExecutionSettings(workers=workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
                                  stitch_parallelism=stitch_parallelism, max_attempts=max_attempts)
    return chroma, EncodeSettings(codec=codec, crf=crf), execution


def follow_prefect_api_url() -> None:
    """Make Prefect use PREFECT_API_URL as it is now. Prefect reads its settings when first
    imported: importing it here, while its server starts, spends that second of a 2-core machine's
    time before the server is up rather than after. Imported before, its settings are refreshed."""
    imported = "prefect.context" in sys.modules
    import prefect  # noqa: F401

    if imported:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


def start_services(min_cpus: float, on_ray_ready: Callable[[], None] | None = None) -> None:
    """Start (or connect to) Ray and the Prefect API side by side: a local Prefect server for this
    command (when no PREFECT_API_URL is set; vidcolor.services.start_prefect_for_this_process)
    starts in a thread while Ray starts in the main thread, which it must (Prefect runs tasks in
    worker threads). Saves the shorter of the two start-ups.
    ``on_ray_ready`` runs as soon as Ray is up, while Prefect may still be starting (e.g. starting
    the actors, so the model loads meanwhile). Warm services (`vidcolor services start`) are used
    when they run and neither RAY_ADDRESS nor PREFECT_API_URL names others."""
    import threading

    from vidcolor import services
    from vidcolor.executor.ray_runtime import ensure_ray

    services.use_if_running()

    failure: list[BaseException] = []

    def start_prefect() -> None:
        try:
            if not os.environ.get("PREFECT_API_URL"):
                # a server of our own, started through Prefect's CLI: faster than its ephemeral one
                services.start_prefect_for_this_process(
                    float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")),
                    while_starting=follow_prefect_api_url)
            import prefect  # noqa: F401 - imported here, beside Ray's start-up, not after it
        except BaseException as e:  # noqa: BLE001 - the flow's own start-up reports it properly
            failure.append(e)

    thread = threading.Thread(target=start_prefect, name="vidcolor-prefect-start", daemon=True)
    thread.start()
    ensure_ray(min_cpus)
    if on_ray_ready is not None:
        on_ray_ready()
    thread.join()


def fail(err: VidcolorError) -> None:
    typer.echo(f"vidcolor: error: {err}", err=True)
    raise typer.Exit(err.exit_code)


def quiet_services(verbose: bool) -> None:
    """Prefect and Ray talk a lot; a user wants the progress bar and one line on error."""
    if not verbose:
        # Our own one-line error replaces Prefect's task tracebacks; --verbose brings them back.
        os.environ["PREFECT_LOGGING_LEVEL"] = "CRITICAL"
        os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not os.environ.get("RAY_ADDRESS"):
        # A local Ray needs no address beyond loopback (read when ray is first imported).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("TQDM_DISABLE", "1")


class RichProgress(progress.ProgressSink):
    """One bar per stage: frames done of the total, rate and ETA."""

    LABELS = {"split": "split (decode + scene cuts)", "colorize": "colorize", "stitch": "stitch + encode"}

    def __init__(self):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = Progress(
            TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("frames"), TextColumn("{task.fields[rate]:>8}"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False, disable=not sys.stderr.isatty() and not os.environ.get("VIDCOLOR_PROGRESS"),
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    def start(self, stage, total):
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(self.LABELS.get(stage, stage), total=total or None, rate="")
        else:
            self.bar.update(self.tasks[stage], total=total or None)

    def advance(self, stage, n):
        if stage not in self.tasks:
            self.start(stage, 0)
        tid = self.tasks[stage]
        self.bar.advance(tid, n)
        speed = self.bar.tasks[tid].speed if tid < len(self.bar.tasks) else None
        self.bar.update(tid, rate=f"{speed:.1f}/s" if speed else "")

    def notice(self, text):
        self.bar.console.print(f"vidcolor: {text}", markup=False, highlight=False, soft_wrap=True)

    def finish(self, stage):
        if stage in self.tasks:
            task = self.bar.tasks[self.tasks[stage]]
            self.bar.update(self.tasks[stage], total=task.completed)
