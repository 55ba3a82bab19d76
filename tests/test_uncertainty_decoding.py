"""Decoding that does no harm where the model is unsure: the bins head's predicted variance, the
pull towards neutral, its place in the weights' metadata, and its calibration on validation photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidcolor.models.generator import Generator, GeneratorConfig, confidence_factor, predicted_variance


def _logits_on(centres: torch.Tensor, weights: dict[int, float], h: int = 2, w: int = 2) -> torch.Tensor:
    """(1, Q, h, w) logits whose softmax puts the given probabilities on the given bins."""
    p = torch.full((centres.shape[0],), 1e-12)
    for q, prob in weights.items():
        p[q] = prob
    return p.log()[None, :, None, None].expand(1, -1, h, w).clone()


def _bin(centres, a, b) -> int:
    return int(((centres - torch.tensor([a, b], dtype=centres.dtype)) ** 2).sum(1).argmin())


def test_predicted_variance_closed_forms():
    gen = Generator(GeneratorConfig(window=1))
    c = gen.bin_centres.float()
    sure = _logits_on(c, {_bin(c, 40, 20): 1.0})
    assert predicted_variance(sure, c).max() < 1e-3
    # half on (40, 20), half on (-40, 20): variance = (80 / 2)^2 = 1600
    split = _logits_on(c, {_bin(c, 40, 20): 0.5, _bin(c, -40, 20): 0.5})
    assert predicted_variance(split, c) == pytest.approx(torch.full((1, 1, 2, 2), 1600.0), rel=1e-4)


def test_confidence_factor_pulls_only_above_ref_and_more_with_power():
    v = torch.tensor([10.0, 100.0, 400.0, 1600.0])
    f1 = confidence_factor(v, 100.0, 1.0)
    assert f1.tolist() == pytest.approx([1.0, 1.0, 0.25, 0.0625])
    f2 = confidence_factor(v, 100.0, 2.0)
    assert (f2 <= f1).all() and f2[3] == pytest.approx(0.0625 ** 2)


def test_decoding_keeps_confident_pixels_and_shrinks_unsure_ones():
    gen = Generator(GeneratorConfig(window=1, temperature=0.5))
    c = gen.bin_centres.float()
    sure = _logits_on(c, {_bin(c, 40, 20): 1.0}, 1, 1)
    unsure = _logits_on(c, {_bin(c, 40, 20): 0.6, _bin(c, -40, -40): 0.4}, 1, 1)
    logits = torch.cat([sure, unsure], dim=-1)  # (1, Q, 1, 2): one sure pixel, one unsure
    plain = gen.decode_logits(logits)
    pulled = gen.decode_logits(logits, uncertainty=(100.0, 1.0))
    assert torch.allclose(pulled[..., 0], plain[..., 0])  # variance ~0 <= ref: untouched
    ratio = pulled[..., 1].norm() / plain[..., 1].norm()
    v = float(predicted_variance(unsure, c))
    assert ratio == pytest.approx(100.0 / v, rel=1e-4) and ratio < 0.2
    # the pull lives in the config: the same result without the override
    gen.config.uncertainty_ref, gen.config.uncertainty_power = 100.0, 1.0
    assert torch.allclose(gen.decode_logits(logits), pulled)


def test_weights_carry_the_pull_and_old_files_decode_as_before(tmp_path):
    from vidcolor.models.gan_colorizer import GanColorizer, read_generator, save_generator

    gen = Generator(GeneratorConfig(window=1, uncertainty_ref=250.0, uncertainty_power=2.0))
    save_generator(gen, tmp_path / "g.safetensors", chroma_gain=1.3)
    back, meta = read_generator(tmp_path / "g.safetensors")
    assert (back.config.uncertainty_ref, back.config.uncertainty_power) == (250.0, 2.0)
    colorizer = GanColorizer(tmp_path / "g.safetensors", device="cpu")
    assert colorizer.generator.config.uncertainty_ref == 250.0 and colorizer.chroma_gain == 1.3
    old = json.loads(meta["config"])
    del old["uncertainty_ref"], old["uncertainty_power"]  # a file written before the pull existed
    assert GeneratorConfig.from_dict(old).uncertainty_ref == 0.0


def _photo_folder(path, n=6, size=96):
    import cv2

    rng = np.random.default_rng(0)
    path.mkdir()
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[:] = rng.integers(60, 200, 3)
        img[size // 2:, :, :] = rng.integers(0, 256, 3)
        img = cv2.GaussianBlur(img, (9, 9), 3)
        cv2.imwrite(str(path / f"p{i}.png"), img)
    return path


def test_calibrate_weights_writes_the_best_setting(tmp_path):
    """Weights -> calibration on photos -> new weights whose metadata holds the best-scoring row,
    with rows without the pull in the same grid; --no-uncertainty leaves the pull off."""
    from vidcolor.models.gan_colorizer import read_generator, save_generator
    from vidcolor.training.calibrate import calibrate_weights

    torch.manual_seed(0)
    src = tmp_path / "g.safetensors"
    save_generator(Generator(GeneratorConfig(window=1)), src, extra_meta={"seed": 7})
    val = _photo_folder(tmp_path / "val")
    out = tmp_path / "cal.safetensors"
    summary = calibrate_weights(src, val, out, device="cpu", cache_dir=tmp_path / "cache", log=lambda m: None)
    rows = json.loads((tmp_path / "cal.calibration.json").read_text())["rows"]
    assert any(r["uncertainty_ref"] == 0 for r in rows) and any(r["uncertainty_ref"] > 0 for r in rows)
    reference = [r for r in rows if r.get("reference")]
    assert len(reference) == 1 and reference[0]["uncertainty_ref"] == 0 and reference[0]["gain"] == 1.0
    # the best score among the rows that harm no more photos than the weights' own decoding
    allowed = [r for r in rows if r["val_share_below_grey_0.5db"] <= reference[0]["val_share_below_grey_0.5db"]]
    best = max(allowed, key=lambda r: r["score"])
    assert summary["best"]["score"] == best["score"] and summary["chosen"]["gain"] == best["gain"]
    assert summary["best_by_score_alone"]["score"] == max(r["score"] for r in rows)
    gen, meta = read_generator(out)
    assert gen.config.uncertainty_ref == pytest.approx(best["uncertainty_ref"])
    assert gen.config.temperature == pytest.approx(best["temperature"])
    assert float(meta["chroma_gain"]) == best["gain"] and meta["seed"] == "7"  # provenance kept
    assert json.loads(meta["calibration"])["val_photos"] == 6
    off = tmp_path / "off.safetensors"
    calibrate_weights(src, val, off, device="cpu", uncertainty=False, cache_dir=tmp_path / "cache", log=lambda m: None)
    assert read_generator(off)[0].config.uncertainty_ref == 0.0
    assert all(r["uncertainty_ref"] == 0 for r in json.loads((tmp_path / "off.calibration.json").read_text())["rows"])


def test_choose_setting_takes_no_colour_bought_with_harm():
    from vidcolor.training.calibrate import choose_setting

    reference = {"score": 0.7, "val_share_below_grey_0.5db": 0.2}
    vivid_but_harmful = {"score": 0.9, "val_share_below_grey_0.5db": 0.3}
    better_and_safe = {"score": 0.8, "val_share_below_grey_0.5db": 0.15}
    assert choose_setting([reference, vivid_but_harmful], reference) is reference
    assert choose_setting([reference, vivid_but_harmful, better_and_safe], reference) is better_and_safe


def test_calibrate_cli_refuses_to_overwrite_its_input(tmp_path):
    from conftest import run_cli
    from vidcolor.models.gan_colorizer import save_generator

    src = tmp_path / "g.safetensors"
    save_generator(Generator(GeneratorConfig(window=1)), src)
    (tmp_path / "val").mkdir()
    r = run_cli(["calibrate", src, "--val", tmp_path / "val", "-o", src])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"vidcolor: error: {src}: would overwrite the input weights; choose another output"]
