"""``vidcolor batch``: colorize many films (an archive job) through the archive flow."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from vidcolor.cli._common import Opt, RichProgress, fail, quiet_services, run_settings, start_services
from vidcolor.errors import BadInputError, VidcolorError


def batch(
    source: list[str] = typer.Argument(..., help="The films: a manifest (.csv or .parquet: input, output, priority, codec, crf, render_size, max_chunk_frames, overlap_frames, model), a folder, an s3:// prefix, a text list (one a line), or several films."),
    output: str = typer.Option(..., "-o", "--output", help="Output folder or s3://bucket/prefix; a film without its own output becomes NAME-colour.SUFFIX there."),
    suffix: str = typer.Option(".mp4", "--suffix", help="Output container: .mp4, .mkv or .mov."),
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
    codec: str = Opt.codec,
    crf: Optional[int] = Opt.crf,
    stitch_parallelism: int = Opt.stitch_parallelism,
    max_attempts: int = Opt.max_attempts,
    films_in_flight: int = typer.Option(2, "--films-in-flight", min=1, help="Films open at once (split and stitch use CPU and disk); their chunks share the actors."),
    report: Optional[str] = typer.Option(None, "--report", help="Parquet report, one row per film (default OUTPUT/vidcolor-report.parquet)."),
    verbose: bool = Opt.verbose,
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Colorize a list of films; failures are reported per film and the batch goes on. Run the
    same command again to resume every unfinished film."""
    quiet_services(verbose)
    try:
        if not output.startswith("s3://") and not Path(output).is_dir():
            raise BadInputError(output, "output folder does not exist")
        chroma, encode, execution = run_settings(
            model=model, render_size=render_size, max_chunk_frames=max_chunk_frames, overlap_frames=overlap_frames,
            reference=reference, reference_strength=reference_strength, codec=codec, crf=crf, workers=workers,
            gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
            stitch_parallelism=stitch_parallelism, max_attempts=max_attempts, temporal_attention=temporal_attention,
            stabilize=stabilize, stabilize_strength=stabilize_strength)
        from vidcolor.job import check_settings

        check_settings(chroma, encode)  # one bad setting would fail every film: say so once, up front
        from vidcolor.archive import list_source

        list_source(source)  # a missing folder or a bad manifest: one line, before Ray and Prefect start
        from flows.colorize_archive import colorize_archive
        from vidcolor import progress

        start_services(execution.workers * execution.actor_cpus)
        # stdout carries only our result: what Ray and Prefect print on the way goes to stderr
        with RichProgress() as bar, contextlib.redirect_stdout(sys.stderr):
            progress.set_sink(bar)
            result = colorize_archive(source if len(source) > 1 else source[0], output, suffix=suffix, chroma=chroma,
                                      encode=encode, execution=execution, store_uri=store,
                                      films_in_flight=films_in_flight, report=report)
    except VidcolorError as e:
        fail(e)
        return
    if json_out:
        typer.echo(json.dumps({k: result[k] for k in ("batch_id", "report", "films")}, indent=2))
    else:
        for row in result["films"]:
            line = f"{row['status']:<9} {row['input']}"
            line += f" -> {row['output']}" if row["status"] in ("succeeded", "skipped") else f": {row['error']}"
            typer.echo(line)
        typer.echo(f"batch {result['batch_id']}: {len(result['succeeded'])} done ({len(result['skipped'])} already), "
                   f"{len(result['failed'])} failed; report {result['report']}")
    if result["failed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
