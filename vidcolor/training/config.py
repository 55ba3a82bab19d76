"""Training configuration: the one place where training options are named, defaulted and explained.
``vidcolor train`` and the ``train_model`` flow are generated from these fields (kept free of torch
so that the CLI can read them cheaply)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


def option(default, help: str, *flags: str, path: bool = False, argument: bool = False):
    """A TrainConfig field with its command-line form: ``help``, the option's ``flags`` when they
    are not ``--field-name`` (a bool field's flags are a pair ``--on/--off``), ``path`` for a folder
    or file, ``argument`` for a positional one. ``default=...``: the field is required."""
    metadata = {"help": help, "flags": flags, "path": path, "argument": argument}
    return field(metadata=metadata) if default is ... else field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    data: str = option(..., "folder of colour training photos", path=True, argument=True)
    out: str = option(..., "run folder: checkpoints, metrics.jsonl, weights", "-o", "--out", path=True)
    val: str | None = option(None, "folder of validation photos (model selection, chroma calibration)", path=True)
    extra: str | None = option(None, "a second photo folder, drawn at --extra-weight of every batch whatever its size "
                                     "(e.g. a large set of a few classes that must not dominate the palette)", path=True)
    extra_weight: float = option(0.5, "share of each batch drawn from --extra (the rest from DATA)")
    seed: int = option(0, "random seed (each step's random stream is derived from it and the step)")
    device: str | None = option(None, "cpu / cuda (default: cuda when available)")
    crop: int = option(192, "training crop size (multiple of 32)")
    cache_size: int = option(256, "photos are cached as uint8 squares of this side (one array per folder)")
    whole_photos: bool = option(False, "train on both ends of each photo's long side, or only its centre square",
                                "--whole-photos/--centre-squares")
    crop_min_scale: float = option(0.65, "smallest random crop side, as a fraction of the cached side (then resized to the crop)")
    tone_jitter: float = option(0.0, "random gamma exp(U(-j, j)) on each stage-1 and stage-2 crop (0 = off): "
                                     "tone curves vary between films")
    ema: float = option(0.0, "decay of the averaged generator weights that each stage hands on and exports (0 = off, e.g. 0.999)")
    batch: int = option(16, "images per step (stage 3: clips x frames)")
    steps: tuple[int, int, int] = option((800, 200, 250), "steps of stage 1 (L1+perceptual), 2 (GAN), 3 (temporal)")
    minutes: tuple[float, float, float] = option((0.0, 0.0, 0.0), "wall-time cap per stage in minutes (0 = none)")
    lr: float = option(3e-4, "decoder learning rate in stage 1 (cosine decay)")
    encoder_lr: float = option(3e-5, "learning rate of the fine-tuned encoder blocks in stage 1")
    gan_lr: float = option(5e-5, "generator learning rate in stages 2 and 3")
    d_lr: float = option(2e-4, "discriminators' learning rate")
    frozen_blocks: int = option(17, "encoder blocks from this index on are fine-tuned; conv0 and the blocks below stay "
                                    "frozen in every stage (17 = the whole encoder frozen)", "--train-encoder-from")
    perceptual: float = option(0.05, "weight of the MobileNetV2 perceptual loss")
    perceptual_crops: int = option(4, "the perceptual loss looks at this many crops of each batch (it costs a backbone pass)")
    semantic: float = option(0.0, "weight of the MobileNetV2 class-distribution loss (KL to the original's; 0 = off)")
    l1: float = option(1.0, "weight of L1(ab)/110 (bins head: on the distribution's mean)")
    adv: float = option(0.02, "weight of the frame PatchGAN loss (stages 2, 3)")
    temporal_adv: float = option(0.01, "weight of the temporal PatchGAN loss (stage 3)")
    consistency: float = option(1.0, "weight of the temporal consistency loss (stage 3)")
    clip_frames: int = option(3, "frames per synthetic-motion clip (stage 3)")
    clips: int = option(4, "clips per step (stage 3)")
    window: int = option(3, "temporal window of the generator (odd; 1 = image model)")
    precision: str = option("auto", "forward passes in bf16 autocast (weights, optimiser and losses stay fp32) or fp32; "
                                    "auto = bf16 where the device computes it natively (AMX / AVX-512 BF16 CPUs, recent GPUs)")
    ckpt_every: int = option(50, "write a checkpoint every this many steps")
    val_size: int = option(256, "validation photos are cached as squares of this side")
    cache_dir: str = option("/tmp/vidcolor_cache", "where the photo caches (.npy) are kept", path=True)
    backbone: str | None = option(None, "MobileNetV2 .safetensors (default: the shipped Coral port)", path=True)
    head: str = option("bins", "bins (distribution over ab bins) or regression")
    rebalance: float = option(0.5, "exponent of the class-rebalancing weights of the bins loss (0 = none, 1 = Zhang et al.)")
    init: str | None = option(None, "generator .safetensors to start from (matching tensors are loaded)", path=True)
    decoding_from: str | None = option(None, "take the final decoding (upsampling, temperature, prior correction, gain) "
                                             "from these generator weights instead of calibrating it on --val", path=True)
    max_steps_this_run: int = option(0, "stop after this many steps in this run, to resume later (0 = no limit)",
                                     "--max-steps")

    def __post_init__(self):
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, got {self.precision}")
        if not 0.0 <= self.extra_weight <= 1.0:
            raise ValueError(f"extra_weight must be between 0 and 1, got {self.extra_weight}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def default(cls, name: str):
        """The default of one field (``dataclasses.MISSING`` for a required one)."""
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
