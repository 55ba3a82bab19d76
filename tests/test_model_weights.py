"""Shipped weights and the whole-image helper."""

from __future__ import annotations

import numpy as np
import torch
import pytest
from safetensors import safe_open

from vidcolor import color
from vidcolor.colorizers import load_colorizer
from vidcolor.models.gan_colorizer import DEFAULT_WEIGHTS, colorize_rgb_image, load_gan_colorizer
from vidcolor.models.mobilenet_v2 import WEIGHTS_PATH as BACKBONE


def test_shipped_weights_fp16_and_small():
    assert DEFAULT_WEIGHTS.exists()
    assert DEFAULT_WEIGHTS.stat().st_size < 30 * 1024 * 1024
    with safe_open(str(DEFAULT_WEIGHTS), framework="pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}
        meta = f.metadata()
    assert dtypes == {"torch.float16"}
    assert "config" in meta and "chroma_gain" in meta


def test_backbone_weights_attribution():
    with safe_open(str(BACKBONE), framework="pt") as f:
        meta = f.metadata()
    assert meta["license"] == "Apache-2.0" and "google-coral/test_data" in meta["attribution"]


def test_default_loads_and_predicts():
    c = load_colorizer("default", device="cpu")
    assert c.temporal_context == 1 and c.size_multiple == 32
    ab = c.predict_ab(np.random.default_rng(0).uniform(0, 100, (3, 64, 96)).astype(np.float32))
    assert ab.shape == (3, 64, 96, 2) and np.isfinite(ab).all()


def test_bad_specs(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(ValueError, match="object storage is not supported"):
        load_gan_colorizer("s3://bucket/key.safetensors")
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        load_gan_colorizer("/nonexistent/w.safetensors")
    with pytest.raises(ValueError, match="must be a .safetensors file"):
        load_gan_colorizer(str(tmp_path))
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ValueError, match="without vidcolor generator metadata"):
        load_gan_colorizer(str(foreign))


def test_colorize_rgb_image_keeps_size_and_lightness():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:75, 0:110]
    rgb = np.stack([(xx * 2) % 256, (yy * 3) % 256, ((xx + yy) * 2) % 256], -1).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rng.integers(-10, 10, rgb.shape), 0, 255).astype(np.uint8)
    out = colorize_rgb_image(load_colorizer("default", device="cpu"), rgb, render_size=64)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    L_in = color.rgb_to_lab(rgb.astype(np.float32) / 255)[..., 0]
    L_out = color.rgb_to_lab(out.astype(np.float32) / 255)[..., 0]
    # out-of-gamut colours lose chroma, not lightness: L within 1 everywhere (uint8 rounding)
    assert np.abs(L_in - L_out).max() < 1.0
