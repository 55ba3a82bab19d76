"""Find a colorizer by spec string.

Specs:
  ``default``                 the GAN weights shipped in the package
  ``PATH.safetensors``        other GAN weights on disk
  ``test:NAME[:ARG]``         deterministic colorizers for tests and demos (vidcolor.colorizers.testing)
"""

from __future__ import annotations

from pathlib import Path

from vidcolor.colorizer import Colorizer


def check_model_spec(spec: str) -> None:
    """A cheap look at a spec before any cluster starts (the file's header, not its weights).
    Raises FileNotFoundError or ValueError whose message names the spec and the problem."""
    if spec == "default":
        return
    if spec.startswith("test:"):
        from vidcolor.colorizers.testing import load_test_colorizer

        load_test_colorizer(spec)
        return
    if spec.startswith("s3://"):
        raise ValueError(f"{spec}: loading weights from object storage is not supported yet; "
                         "download the .safetensors file and pass its path")
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{spec}: no such weights file")
    if not path.is_file() or path.suffix != ".safetensors":
        raise ValueError(f"{spec}: weights must be a .safetensors file")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # the library's errors vary by version; all mean "not readable"
        raise ValueError(f"{spec}: not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None
    if "config" not in meta:
        raise ValueError(f"{spec}: safetensors file without vidcolor generator metadata (no 'config')")


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
