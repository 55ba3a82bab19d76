"""``vidcolor report`` and ``vidcolor preview``: temporal quality as numbers and plots, and a
side-by-side grey | colour video."""

from __future__ import annotations

import json
from typing import Optional

import typer

from vidcolor.cli._common import fail
from vidcolor.errors import VidcolorError


def report(
    target: str = typer.Argument(..., help="A run id, a run folder (<store>/runs/<id>) or a colorized video."),
    output: str = typer.Option(..., "-o", "--output", help="Folder for report.json and the PNG plots."),
    original: Optional[str] = typer.Option(None, "--original", help="The colour original, when there is one: adds PSNR/SSIM and the original's own CDC and warp error."),
    store: Optional[str] = typer.Option(None, "--store", help="Run-state root to find a run id in. Default: $VIDCOLOR_STORE or ~/.cache/vidcolor/store."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Measure flicker (CDC, warp error) and seams at chunk joins of a colorized film; plot them."""
    from vidcolor.report import resolve_target, write_report

    try:
        rep = write_report(resolve_target(target, store), output, original)
    except VidcolorError as e:
        fail(e)
        return
    s = rep["summary"]
    if json_out:
        typer.echo(json.dumps(s))
        return
    line = f"CDC {s['cdc']:.5f}" if s.get("cdc") is not None else "CDC -"
    if s.get("cdc_ratio") is not None:
        line += f" ({s['cdc_ratio']:.2f}x the original's)"
    if s.get("warp_error") is not None:
        line += f", warp error {s['warp_error']:.6f}"
        if s.get("warp_error_ratio") is not None:
            line += f" ({s['warp_error_ratio']:.2f}x)"
    if s.get("psnr") is not None:
        line += f", PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.3f}"
    if s.get("max_seam_score") is not None:
        line += f", worst seam {s['max_seam_score']:.2f} of {len(s['seams'])} joins"
    typer.echo(line)
    typer.echo(f"wrote {output}/report.json and {', '.join(rep['files'])}")


def preview(
    target: str = typer.Argument(..., help="A run id, a run folder, or an input film a finished run colorized."),
    output: str = typer.Option(..., "-o", "--output", help="Side-by-side video (.mp4, .mkv or .mov)."),
    store: Optional[str] = typer.Option(None, "--store", help="Run-state root. Default: $VIDCOLOR_STORE or ~/.cache/vidcolor/store."),
    height: int = typer.Option(360, "--height", min=32, help="Height of each half, in pixels."),
) -> None:
    """Grey | colour side by side, with the film's audio."""
    from vidcolor.report import make_preview, preview_pair

    try:
        grey, colour = preview_pair(target, store)
        make_preview(grey, colour, output, height)
    except VidcolorError as e:
        fail(e)
        return
    typer.echo(f"wrote {output} ({grey} | {colour})")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("preview")(preview)
