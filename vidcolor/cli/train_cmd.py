"""``vidcolor train``: the three-stage GAN training (library: vidcolor.training). Its options are
generated from ``TrainConfig``'s fields (name, default, help, flags), so a new training option is
added in one place and the CLI cannot drift from the library."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Optional

import typer

from vidcolor.training.config import TrainConfig

_FIELD_TYPES = typing.get_type_hints(TrainConfig)


def _element_type(name: str) -> type | None:
    """int / float for a tuple field (given on the command line as comma-separated text), else None."""
    hint = _FIELD_TYPES[name]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0]
    return None


def _is_optional(name: str) -> bool:
    return type(None) in typing.get_args(_FIELD_TYPES[name])


def _cli_type(f: dataclasses.Field):
    if _element_type(f.name) is not None:
        return str
    base = Path if f.metadata["path"] else next(t for t in (typing.get_args(_FIELD_TYPES[f.name]) or
                                                         (_FIELD_TYPES[f.name],)) if t is not type(None))
    return Optional[base] if _is_optional(f.name) else base


def _cli_default(f: dataclasses.Field):
    if f.default is dataclasses.MISSING:
        return ...
    if _element_type(f.name) is not None:
        return ",".join(f"{v:g}" for v in f.default)
    return f.default


def train_parameters() -> list[inspect.Parameter]:
    """One command-line parameter per TrainConfig field, plus ``--export`` (not a training option)."""
    params = []
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        if meta["argument"]:
            info = typer.Argument(_cli_default(f), help=meta["help"])
        else:
            info = typer.Option(_cli_default(f), *meta["flags"], help=meta["help"])
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=_cli_type(f)))
    export = typer.Option(None, help="write the final fp16 weights (with the calibrated decoding) here")
    params.append(inspect.Parameter("export", inspect.Parameter.KEYWORD_ONLY, default=export,
                                    annotation=Optional[Path]))
    return params


def config_from_cli(values: dict) -> TrainConfig:
    """TrainConfig from the parsed command line: paths as text, tuple fields from comma-separated text."""
    config = {}
    for f in dataclasses.fields(TrainConfig):
        value = values[f.name]
        cast = _element_type(f.name)
        if cast is not None:
            parts = [cast(x) for x in str(value).split(",")]
            if len(parts) != len(f.default):
                raise typer.BadParameter(f"expected {len(f.default)} comma-separated values, got {value!r}",
                                         param_hint=f"--{f.name}")
            value = tuple(parts)
        elif isinstance(value, Path):
            value = str(value)
        config[f.name] = value
    try:
        return TrainConfig(**config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def register(app: typer.Typer) -> None:
    def train(**values) -> None:
        """Train (or resume) the colorization GAN; per-epoch metrics go to OUT/metrics.jsonl."""
        from vidcolor.training.calibrate import finish_run
        from vidcolor.training.trainer import Trainer

        export = values.pop("export")
        trainer = Trainer(config_from_cli(values), log=lambda m: typer.echo(m))
        state = trainer.train()
        if state.get("done"):
            finish_run(trainer, export)

    params = train_parameters()
    train.__signature__ = inspect.Signature(params, return_annotation=None)
    train.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    app.command("train")(train)
