"""Training configuration: one set of defaults for ``vidcolor train``, the training flow and
the library (kept free of torch so that the CLI can read the defaults cheaply)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class TrainConfig:
    data: str
    out: str
    val: str | None = None
    seed: int = 0
    device: str | None = None
    crop: int = 192
    cache_size: int = 256
    whole_photos: bool = False  # train on both ends of each photo's long side, not only its centre square
    crop_min_scale: float = 0.65  # random crop side, as a fraction of the cached side (then resized to crop)
    tone_jitter: float = 0.0  # random gamma exp(U(-j, j)) on each stage-1/2 crop (0 = off): tone curves vary between films
    ema: float = 0.0  # decay of the generator's weight average (0 = off); each stage hands its average on
    batch: int = 16
    steps: tuple[int, int, int] = (800, 200, 250)
    minutes: tuple[float, float, float] = (0.0, 0.0, 0.0)  # wall-time cap per stage, 0 = none
    lr: float = 3e-4
    encoder_lr: float = 3e-5
    gan_lr: float = 5e-5
    d_lr: float = 2e-4
    frozen_blocks: int = 17  # conv0 and blocks < this stay frozen in every stage (17 = the whole encoder)
    perceptual: float = 0.05
    perceptual_crops: int = 4  # the perceptual loss looks at this many crops of each batch (it costs a backbone pass)
    semantic: float = 0.0  # weight of the class-distribution KL on the perceptual crops (0 = off)
    l1: float = 1.0  # weight of L1(ab)/110 (bins head: on the distribution's mean)
    adv: float = 0.02
    temporal_adv: float = 0.01
    consistency: float = 1.0
    clip_frames: int = 3
    clips: int = 4
    window: int = 3
    ckpt_every: int = 50
    val_size: int = 256
    cache_dir: str = "/tmp/vidcolor_cache"
    backbone: str | None = None
    head: str = "bins"
    rebalance: float = 0.5  # exponent of the class rebalancing weights (0 = none, 1 = Zhang et al.)
    init: str | None = None  # generator weights to start from (matching tensors are loaded)
    max_steps_this_run: int = 0  # stop after this many steps (0 = no limit): for tests / pausing

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def default(cls, name: str):
        """The default of one field: the CLI and the flow take their defaults from here."""
        return cls.__dataclass_fields__[name].default

    @classmethod
    def from_options(cls, options: dict) -> "TrainConfig":
        """A config from plain values (a flow's parameters, a JSON file): lists become the
        tuples the stages expect, and an unknown name is one error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = dict(options)
        for key in ("steps", "minutes"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)
