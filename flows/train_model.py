"""Train the colorization model: composes the training task (no logic of its own). The flow's
parameters are generated from ``TrainConfig``'s fields, as ``vidcolor train``'s options are."""

from __future__ import annotations

import dataclasses
import inspect
import typing

from prefect import flow

from tasks.train import train_colorizer
from vidcolor.training.config import TrainConfig


def takes_train_config(fn):
    """Gives ``fn(data, out, export, options, **fields)`` the signature of every TrainConfig field
    (name, type, default) before its own ``export`` and ``options``, so Prefect shows and validates
    each training option as a parameter."""
    hints = typing.get_type_hints(TrainConfig)
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(f.name, kind, annotation=hints[f.name],
                                **({} if f.default is dataclasses.MISSING else {"default": f.default}))
              for f in dataclasses.fields(TrainConfig)]
    own = inspect.signature(fn).parameters
    params += [own["export"].replace(annotation=str | None), own["options"].replace(annotation=dict | None)]
    fn.__signature__ = inspect.Signature(params, return_annotation=dict)
    fn.__annotations__ = {p.name: p.annotation for p in params} | {"return": dict}
    return fn


@flow(name="train-model")
@takes_train_config
def train_model(data: str, out: str, export: str | None = None, options: dict | None = None, **fields) -> dict:
    """Every TrainConfig field is a parameter of its own (default: TrainConfig's); ``options``
    takes fields as one dict too, e.g. the shipped v3 recipe's {"init": ..., "frozen_blocks": 7,
    "encoder_lr": 5e-5, "lr": 1.5e-4}. ``export``: copy the final fp16 weights there."""
    return train_colorizer({"data": data, "out": out, **fields, **(options or {})}, export)
