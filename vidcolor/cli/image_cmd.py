"""``vidcolor image INPUT -o OUTPUT``: colorize one image or a folder of images.

Each output keeps its input's size: Lab L of the input at full resolution, chroma predicted at the
render size and upsampled. Bad input gives one error line naming the file, a non-zero exit and no
output file (outputs are written to a temporary name and renamed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor.cli._common import REFERENCE_HELP, REFERENCE_STRENGTH_HELP, fail, reference_palette
from vidcolor.errors import BadInputError
from vidcolor.media.still import IMAGE_SUFFIXES, is_image_name, list_images, read_image_rgb, write_image_rgb

class ImageError(Exception):
    pass


def read_rgb(path: Path):
    try:
        return read_image_rgb(path)
    except ValueError as exc:
        raise ImageError(str(exc)) from None


def write_rgb(path: Path, rgb) -> None:
    try:
        write_image_rgb(path, rgb)
    except ValueError as exc:
        raise ImageError(str(exc)) from None


def plan(input: Path, output: Path) -> list[tuple[Path, Path]]:
    if not input.exists():
        raise ImageError(f"{input}: no such file or folder")
    if input.is_dir():
        files = list_images(input)
        if not files:
            raise ImageError(f"{input}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        if output.exists() and not output.is_dir():
            raise ImageError(f"{output}: input is a folder, so the output must be a folder")
        return [(p, output / p.name) for p in files]
    if output.is_dir():
        return [(input, output / input.name)]
    if not is_image_name(output):
        raise ImageError(f"{output}: output needs an image suffix ({', '.join(IMAGE_SUFFIXES)})")
    return [(input, output)]


def register(app: typer.Typer) -> None:
    @app.command("image")
    def image(
        input: Path = typer.Argument(..., help="an image, or a folder of images"),
        output: Path = typer.Option(..., "-o", "--output", help="output image (or folder for a folder input)"),
        model: str = typer.Option("default", "--model", help="colorizer spec: default, PATH.safetensors, test:NAME"),
        render_size: int = typer.Option(256, "--render-size", help="short side the model sees (rounded to its multiple)"),
        reference: Optional[Path] = typer.Option(None, "--reference", help=REFERENCE_HELP),
        reference_strength: float = typer.Option(1.0, "--reference-strength", help=REFERENCE_STRENGTH_HELP),
        device: Optional[str] = typer.Option(None, help="cpu / cuda"),
    ) -> None:
        """Colorize photos; sizes and luminance are kept."""
        from vidcolor.colorizers import load_colorizer
        from vidcolor.models.gan_colorizer import colorize_rgb_image

        try:
            if render_size < 32:
                raise ImageError(f"--render-size {render_size}: must be at least 32")
            jobs = plan(input, output)
            images = [(src, dst, read_rgb(src)) for src, dst in jobs]  # validate every input first
            palette = reference_palette(reference, reference_strength) if reference else None
            try:
                colorizer = load_colorizer(model, device=device)
            except (FileNotFoundError, ValueError) as exc:  # the message names the spec
                raise ImageError(f"--model: {exc}") from exc
            if palette:
                try:
                    colorizer.set_palette(palette, reference_strength)
                except ValueError as exc:
                    raise ImageError(f"--reference: {exc}") from exc
            for src, dst, rgb in images:
                write_rgb(dst, colorize_rgb_image(colorizer, rgb, render_size))
                typer.echo(f"{src} -> {dst}")
        except ImageError as exc:
            fail(BadInputError(None, str(exc)))
        except BadInputError as exc:
            fail(exc)
