"""Find a colorizer by spec string.

Specs:
  ``default``                 the GAN weights shipped in the package
  ``PATH.safetensors``        other GAN weights on disk
  ``s3://bucket/key``         GAN weights on object storage (fetched once into the local cache)
  ``test:NAME[:ARG]``         deterministic colorizers for tests and demos (vidcolor.colorizers.testing)
"""

from __future__ import annotations

from vidcolor.colorizer import Colorizer


def load_colorizer(spec: str = "default", device: str | None = None) -> Colorizer:
    if spec.startswith("test:"):
        from vidcolor.colorizers.testing import load_test_colorizer

        return load_test_colorizer(spec)
    from vidcolor.models.gan_colorizer import load_gan_colorizer

    return load_gan_colorizer(None if spec == "default" else spec, device=device)
