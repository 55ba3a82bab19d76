"""Train the colorization model: composes the training task (no logic of its own)."""

from __future__ import annotations

from prefect import flow

from tasks.train import train_colorizer
from vidcolor.training.config import TrainConfig

D = TrainConfig.default


@flow(name="train-model")
def train_model(
    data: str,
    out: str,
    val: str | None = None,
    steps: tuple[int, int, int] = D("steps"),
    minutes: tuple[float, float, float] = D("minutes"),
    batch: int = D("batch"),
    crop: int = D("crop"),
    window: int = D("window"),
    seed: int = D("seed"),
    device: str | None = None,
    export: str | None = None,
    options: dict | None = None,
) -> dict:
    """``options``: any further TrainConfig field by name, e.g. the shipped v3 recipe's
    {"init": ..., "frozen_blocks": 7, "encoder_lr": 5e-5, "lr": 1.5e-4}."""
    config = {"data": data, "out": out, "val": val, "steps": list(steps), "minutes": list(minutes),
              "batch": batch, "crop": crop, "window": window, "seed": seed, "device": device, **(options or {})}
    return train_colorizer(config, export)
