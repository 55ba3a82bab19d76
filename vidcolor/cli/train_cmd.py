"""``vidcolor train``: the three-stage GAN training (library: vidcolor.training)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor.training.config import TrainConfig

D = TrainConfig.default  # every default below is TrainConfig's, so CLI, flow and library agree


def triple_text(name: str) -> str:
    return ",".join(f"{v:g}" for v in D(name))


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        data: Path = typer.Argument(..., help="folder of colour training photos"),
        out: Path = typer.Option(..., "-o", "--out", help="run folder: checkpoints, metrics.jsonl, weights"),
        val: Optional[Path] = typer.Option(None, "--val", help="folder of validation photos (model selection, chroma-gain calibration)"),
        steps: str = typer.Option(triple_text("steps"), help="steps of stage 1 (L1+perceptual), 2 (GAN), 3 (temporal)"),
        minutes: str = typer.Option(triple_text("minutes"), help="wall-time cap per stage in minutes (0 = none)"),
        batch: int = typer.Option(D("batch"), help="images per step (stage 3: clips x frames)"),
        crop: int = typer.Option(D("crop"), help="training crop size (multiple of 32)"),
        window: int = typer.Option(D("window"), help="temporal window of the generator (odd; 1 = image model)"),
        seed: int = typer.Option(D("seed")),
        device: Optional[str] = typer.Option(None, help="cpu / cuda (default: cuda when available)"),
        export: Optional[Path] = typer.Option(None, help="write the final fp16 weights (with calibrated chroma gain) here"),
        max_steps: int = typer.Option(D("max_steps_this_run"), help="stop after this many steps in this run (resume later)"),
        adv: float = typer.Option(D("adv"), help="weight of the frame PatchGAN loss (stages 2, 3)"),
        temporal_adv: float = typer.Option(D("temporal_adv"), help="weight of the temporal PatchGAN loss (stage 3)"),
        perceptual: float = typer.Option(D("perceptual"), help="weight of the MobileNetV2 perceptual loss"),
        semantic: float = typer.Option(D("semantic"), help="weight of the MobileNetV2 class-distribution loss (KL to the original's)"),
        lr: float = typer.Option(D("lr"), help="decoder learning rate in stage 1 (cosine decay)"),
        consistency: float = typer.Option(D("consistency"), help="weight of the temporal consistency loss (stage 3)"),
        gan_lr: float = typer.Option(D("gan_lr"), help="generator learning rate in stages 2 and 3"),
        head: str = typer.Option(D("head"), help="bins (distribution over ab bins) or regression"),
        rebalance: float = typer.Option(D("rebalance"), help="class-rebalancing exponent of the bins loss (0 = none)"),
        init: Optional[Path] = typer.Option(None, help="generator .safetensors to start from (matching tensors)"),
        train_encoder_from: int = typer.Option(D("frozen_blocks"), help="encoder blocks from this index on are fine-tuned (17 = encoder frozen)"),
        encoder_lr: float = typer.Option(D("encoder_lr"), help="learning rate of the fine-tuned encoder blocks"),
        ema: float = typer.Option(D("ema"), help="decay of the averaged generator weights that each stage hands on and exports (0 = off, e.g. 0.999)"),
        crop_min_scale: float = typer.Option(D("crop_min_scale"), help="smallest random crop side, as a fraction of the photo's short side"),
        tone_jitter: float = typer.Option(D("tone_jitter"), help="random gamma exp(U(-j, j)) on each stage-1 and stage-2 crop (0 = off)"),
        whole_photos: bool = typer.Option(D("whole_photos"), "--whole-photos/--centre-squares", help="train on both ends of each photo's long side, or only its centre square"),
    ) -> None:
        """Train (or resume) the colorization GAN; per-epoch metrics go to OUT/metrics.jsonl."""
        from vidcolor.training.trainer import Trainer
        from vidcolor.training.calibrate import finish_run

        def triple(s: str, cast):
            parts = [cast(x) for x in s.split(",")]
            if len(parts) != 3:
                raise typer.BadParameter(f"expected three comma-separated values, got {s!r}")
            return tuple(parts)

        cfg = TrainConfig(data=str(data), out=str(out), val=str(val) if val else None, steps=triple(steps, int),
                          minutes=triple(minutes, float), batch=batch, crop=crop, window=window, seed=seed,
                          device=device, max_steps_this_run=max_steps, adv=adv,
                          temporal_adv=temporal_adv, perceptual=perceptual, semantic=semantic, lr=lr, consistency=consistency, gan_lr=gan_lr,
                          head=head, rebalance=rebalance, init=str(init) if init else None,
                          frozen_blocks=train_encoder_from, encoder_lr=encoder_lr, ema=ema,
                          crop_min_scale=crop_min_scale, tone_jitter=tone_jitter, whole_photos=whole_photos)
        trainer = Trainer(cfg, log=lambda m: typer.echo(m))
        state = trainer.train()
        if state.get("done"):
            finish_run(trainer, export)
