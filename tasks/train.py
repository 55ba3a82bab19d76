"""Train: a thin Prefect task over ``vidcolor.training`` (the library never imports prefect)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE


@task(name="train-colorizer", cache_policy=NO_CACHE)
def train_colorizer(config: dict, export: str | None = None) -> dict:
    """Run (or resume) the three training stages; returns the final state and weights path."""
    from pathlib import Path

    from vidcolor.training.calibrate import finish_run
    from vidcolor.training.config import TrainConfig
    from vidcolor.training.trainer import Trainer

    trainer = Trainer(TrainConfig.from_options(config))
    state = trainer.train()
    weights = None
    if state.get("done"):
        weights = str(finish_run(trainer, Path(export) if export else None))
    return {"state": state, "weights": weights}
