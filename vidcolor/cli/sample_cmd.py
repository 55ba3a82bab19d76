"""``vidcolor sample``: make a short black-and-white test film to try the tool on."""

from __future__ import annotations

import typer


def sample(
    output: str = typer.Argument("sample.mp4", help="Where to write the clip (.mp4 or .mkv)."),
    seconds: float = typer.Option(10.0, "--seconds", help="Length of the clip."),
    width: int = typer.Option(480, "--width"),
    height: int = typer.Option(360, "--height"),
) -> None:
    """Make a grayscale sample film (moving scenes with hard cuts, stereo audio, subtitles)."""
    from vidcolor.media.synth import make_test_film

    total = max(8, int(seconds * 24000 / 1001))
    scenes = [total // 3, total // 3, total - 2 * (total // 3)]
    info = make_test_film(output, scenes, size=(width, height), title="vidcolor sample")
    typer.echo(f"wrote {output}: {info['frames']} frames at {info['fps']} fps, hard cuts at frames {info['cuts']}")


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
