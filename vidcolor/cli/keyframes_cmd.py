"""``vidcolor keyframes INPUT -o DIR``: the grey frames a colourist paints into colour keyframes."""

from __future__ import annotations

from typing import Optional

import typer

from vidcolor.cli._common import fail
from vidcolor.errors import VidcolorError


def keyframes(
    input: str = typer.Argument(..., help="Grayscale film (a local path)."),
    output: str = typer.Option(..., "-o", "--output", help="Folder for the grey frames, named by frame index (000120.png)."),
    every_scene: bool = typer.Option(False, "--every-scene", help="The first frame of every scene (the default when --frames is not given)."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Chosen 0-based frame indices, e.g. 0,120,250."),
) -> None:
    """Write grey frames to paint: colour them and pass the folder to `vidcolor colorize --keyframes`."""
    from vidcolor.keyframes import parse_frame_list, write_grey_keyframes

    try:
        chosen = parse_frame_list(frames) if frames else []
        written = write_grey_keyframes(input, output, chosen, every_scene)
    except VidcolorError as e:
        fail(e)
        return
    for path in written:
        typer.echo(path)


def register(app: typer.Typer) -> None:
    app.command("keyframes")(keyframes)
