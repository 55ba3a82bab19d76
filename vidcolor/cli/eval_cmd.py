"""``vidcolor eval images DIR -o REPORT_DIR``: quality of a colorizer on colour photos
(library: vidcolor.evaluation)."""

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

    app.add_typer(eval_app, name="eval")
