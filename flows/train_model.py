"""Train the colorization model: composes the training task (no logic of its own)."""

from __future__ import annotations

from prefect import flow

from tasks.train import train_colorizer


@flow(name="train-model")
def train_model(
    data: str,
    out: str,
    val: str | None = None,
    steps: tuple[int, int, int] = (800, 250, 300),
    minutes: tuple[float, float, float] = (0.0, 0.0, 0.0),
    batch: int = 16,
    crop: int = 192,
    window: int = 3,
    seed: int = 0,
    device: str | None = None,
    export: str | None = None,
) -> dict:
    config = {"data": data, "out": out, "val": val, "steps": list(steps), "minutes": list(minutes),
              "batch": batch, "crop": crop, "window": window, "seed": seed, "device": device}
    return train_colorizer(config, export)
