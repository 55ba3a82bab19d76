"""``vidcolor eval images DIR -o REPORT_DIR``: quality of a colorizer on colour photos;
``vidcolor eval video CLIP [--frames N] [-o JSON]``: on a colour clip, desaturated and colorized
through the pipeline (library: vidcolor.evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor.cli._common import fail
from vidcolor.errors import BadInputError


def register(app: typer.Typer) -> None:
    eval_app = typer.Typer(help="Evaluate colorizers.", no_args_is_help=True)

    @eval_app.command("images")
    def images(
        folder: Path = typer.Argument(..., help="folder of colour photos (file names may carry WordNet ids)"),
        out: Path = typer.Option(..., "-o", "--out", help="report folder: report.json, contact_sheet.png"),
        model: str = typer.Option("default", "--model", help="colorizer spec"),
        render_size: int = typer.Option(256, "--render-size"),
        limit: Optional[int] = typer.Option(None, help="only the first N images"),
        device: Optional[str] = typer.Option(None),
    ) -> None:
        """Desaturate, colorize, compare with the originals (beside grey and original reference rows)."""
        from vidcolor.colorizers import load_colorizer
        from vidcolor.evaluation.images import evaluate_images, format_table

        if not folder.is_dir():
            fail(BadInputError(str(folder), "not a folder"))
        try:
            colorizer = load_colorizer(model, device=device)
        except (FileNotFoundError, ValueError) as exc:
            fail(BadInputError("--model", str(exc)))
        report = evaluate_images(folder, colorizer, out, render_size=render_size, limit=limit,
                                 log=lambda m: typer.echo(m))
        typer.echo(format_table(report))
        typer.echo(f"targets: {report['targets']}")
        typer.echo(f"wrote {out / 'report.json'} and {out / 'contact_sheet.png'}")

    @eval_app.command("video")
    def video(
        original: Path = typer.Argument(..., help="a colour clip: it is desaturated, colorized and compared with itself"),
        out: Optional[Path] = typer.Option(None, "-o", "--out", help="write the report (JSON) here"),
        frames: Optional[int] = typer.Option(None, "--frames", help="only the first N frames"),
        model: str = typer.Option("default", "--model", help="colorizer spec"),
        render_size: int = typer.Option(256, "--render-size"),
        workers: int = typer.Option(1, "--workers", min=1),
        gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0.0),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect and Ray logs."),
    ) -> None:
        """PSNR against the original, the grey baseline's PSNR, colourfulness ratio and realism over the frames."""
        from vidcolor.cli._common import quiet_services
        from vidcolor.errors import VidcolorError
        from vidcolor.settings import ChromaSettings, ExecutionSettings

        quiet_services(verbose)
        try:
            from vidcolor.colorizers import check_model_spec
            from vidcolor.evaluation.video import evaluate_video, format_summary, write_report

            try:
                check_model_spec(model)
            except (FileNotFoundError, ValueError) as exc:
                raise BadInputError("--model", str(exc)) from None
            from flows.colorize_film import run_colorize_film
            from vidcolor.cli._common import start_services

            start_services(workers)  # Ray from the main thread, Prefect beside it
            report = evaluate_video(original, run_colorize_film, ChromaSettings(model=model, render_size=render_size),
                                    ExecutionSettings(workers=workers, gpus_per_worker=gpus_per_worker),
                                    frames=frames, log=lambda m: typer.echo(m, err=True))
        except VidcolorError as exc:
            fail(exc)
            return
        if out is not None:
            write_report(report, out)
        typer.echo(format_summary(report))
        if out is not None:
            typer.echo(f"wrote {out}")

    app.add_typer(eval_app, name="eval")
