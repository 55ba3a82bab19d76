"""Find a colorizer by spec string.

Specs:
  ``default``                 the GAN weights shipped in the package
  ``PATH.safetensors``        other GAN weights on disk
  ``test:NAME[:ARG]``         deterministic colorizers for tests and demos (vidcolor.colorizers.testing)

``describe_model`` tells the driver what it needs (identity, size multiple, palette support) from
the weights header alone; only ``load_colorizer`` (on the Ray actors, or ``vidcolor image``)
builds a network.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidcolor.colorizer import Colorizer


@dataclass(frozen=True)
class ModelDescription:
    identity: str  # name + weights hash: part of the run id
    size_multiple: int  # render sizes must be multiples of this
    palette_refusal: str | None  # why this model cannot follow a reference palette, or None


def check_model_spec(spec: str) -> None:
    """A cheap look at a spec before any cluster starts (the file's header, not its weights).
    Raises FileNotFoundError or ValueError whose message names the spec and the problem."""
    if spec == "default":
        return
    if spec.startswith("test:"):
        from vidcolor.colorizers.testing import load_test_colorizer

        load_test_colorizer(spec)
        return
    from vidcolor.models.weights_file import check_weights_file

    check_weights_file(spec)


def describe_model(spec: str, palette=None) -> ModelDescription:
    """What the driver needs to know of a model, without building it. ``palette``: a
    ``vidcolor.palette.Palette`` the run would follow (its refusal is reported, not raised)."""
    if spec.startswith("test:"):
        from vidcolor.colorizers.testing import load_test_colorizer

        colorizer = load_test_colorizer(spec)  # cheap: numpy only
        refusal = None
        if palette is not None:
            try:
                colorizer.set_palette(palette)
            except ValueError as e:
                refusal = str(e)
        return ModelDescription(colorizer.identity, colorizer.size_multiple, refusal)
    from vidcolor.models.weights_file import DEFAULT_WEIGHTS, GAN_SIZE_MULTIPLE, check_weights_file, weights_info
    from vidcolor.palette import head_refusal

    if spec == "default":
        if not DEFAULT_WEIGHTS.exists():
            raise FileNotFoundError(f"{DEFAULT_WEIGHTS}: the shipped default weights are missing")
        info = weights_info(DEFAULT_WEIGHTS)
    else:
        info = weights_info(spec, check_weights_file(spec))
    return ModelDescription(info.identity, GAN_SIZE_MULTIPLE, head_refusal(info.identity, info.head))


def load_colorizer(spec: str = "default", device: str | None = None, palette: str = "",
                   palette_strength: float = 1.0) -> Colorizer:
    """The colorizer of ``spec``; with ``palette`` (``Palette.to_text()``) it follows that
    reference palette (ValueError if the model cannot)."""
    if spec.startswith("test:"):
        from vidcolor.colorizers.testing import load_test_colorizer

        colorizer = load_test_colorizer(spec)
    else:
        from vidcolor.models.gan_colorizer import load_gan_colorizer

        colorizer = load_gan_colorizer(None if spec == "default" else spec, device=device)
    if palette:
        from vidcolor.palette import Palette

        colorizer.set_palette(Palette.parse(palette), palette_strength)
    return colorizer
