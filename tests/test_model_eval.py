"""Evaluation metrics on synthetic images."""

from __future__ import annotations

import numpy as np

from vidcolor.evaluation.images import class_index, grey_of, load_wnids
from vidcolor.evaluation.metrics import PSNR_CAP, colourfulness, psnr, ssim


def test_psnr_identical_is_capped_and_ordering():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(a, a) == PSNR_CAP
    b = np.clip(a.astype(int) + 5, 0, 255).astype(np.uint8)
    c = np.clip(a.astype(int) + 20, 0, 255).astype(np.uint8)
    assert 20 < psnr(a, c) < psnr(a, b) < PSNR_CAP


def test_ssim():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    assert abs(ssim(a, a) - 1) < 1e-9
    assert ssim(a, 255 - a) < 0.5


def test_colourfulness():
    grey = np.full((16, 16, 3), 120, np.uint8)
    assert colourfulness(grey) == 0
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    assert colourfulness(red) > 50
    rng = np.random.default_rng(2)
    assert colourfulness(grey_of(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))) < 1.0


def test_wnid_classes():
    wnids = load_wnids()
    assert len(wnids) == 1000 and wnids == sorted(wnids) and wnids[0] == "n01440764"
    idx = {w: i for i, w in enumerate(wnids)}
    assert class_index("n01443537_11099_goldfish.jpg", idx) == 2
    assert class_index("bsd100_img_001.jpg", idx) is None
