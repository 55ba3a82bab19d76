"""``vidcolor calibrate WEIGHTS --val DIR -o OUT``: choose a bins-head model's decoding on validation
photos (temperature, gain, and the pull towards neutral where the model is unsure) and write the
weights with it (library: vidcolor.training.calibrate.calibrate_weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor.cli._common import fail
from vidcolor.errors import BadInputError


def register(app: typer.Typer) -> None:
    @app.command("calibrate")
    def calibrate(
        weights: Path = typer.Argument(..., help="generator weights (.safetensors) with a bins head"),
        val: Path = typer.Option(..., "--val", help="folder of validation photos (never the evaluation photos)"),
        out: Path = typer.Option(..., "-o", "--out", help="calibrated weights (.safetensors); OUT.calibration.json beside it"),
        uncertainty: bool = typer.Option(True, "--uncertainty/--no-uncertainty",
                                         help="pull chroma towards neutral where the model is unsure (calibrated)"),
        device: Optional[str] = typer.Option(None),
    ) -> None:
        """Calibrate the decoding on validation photos and write new weights (the input is not changed)."""
        from vidcolor.colorizers import check_model_spec

        try:
            check_model_spec(str(weights))
        except (FileNotFoundError, ValueError) as exc:
            fail(BadInputError(str(weights), str(exc).removeprefix(f"{weights}: ")))
        if not val.is_dir():
            fail(BadInputError(str(val), "not a folder"))
        if out.suffix != ".safetensors":
            fail(BadInputError(str(out), "the output must be a .safetensors file"))
        if out.resolve() == weights.resolve():
            fail(BadInputError(str(out), "would overwrite the input weights; choose another output"))
        from vidcolor.training.calibrate import calibrate_weights

        try:
            summary = calibrate_weights(weights, val, out, device=device, uncertainty=uncertainty,
                                        log=lambda m: typer.echo(m, err=True))
        except ValueError as exc:
            fail(BadInputError(str(weights), str(exc).removeprefix(f"{weights}: ")))
            return
        best, without = summary["best"], summary["best_without_pull"]
        for label, row in (("chosen", best), ("best without the pull", without)):
            typer.echo(f"{label}: T {row['temperature']}, gain {row['gain']}, ref {row['uncertainty_ref']:.0f}, "
                       f"power {row['uncertainty_power']}: PSNR {row['val_psnr'] - row['val_psnr_grey']:+.2f} dB "
                       f"over grey, ratio {row['val_colourfulness_ratio']:.3f}, score {row['score']:.3f}")
        typer.echo(f"wrote {out}")
