"""``vidcolor`` command line: a thin layer over the library. Each subcommand lives in its own module
and adds itself to the app with ``register(app)``."""

from __future__ import annotations

import typer

from vidcolor.cli import (batch_cmd, calibrate_cmd, colorize_cmd, eval_cmd, image_cmd, keyframes_cmd, report_cmd,
                          sample_cmd, services_cmd, status_cmd, train_cmd)

app = typer.Typer(
    name="vidcolor",
    help="Colorize black-and-white film: a GAN predicts chroma, the film's own luminance is kept.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (colorize_cmd, batch_cmd, status_cmd, image_cmd, eval_cmd, train_cmd, calibrate_cmd, sample_cmd, report_cmd,
                keyframes_cmd, services_cmd):
    _module.register(app)


def main() -> None:
    app()
