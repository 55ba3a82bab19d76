"""The realism measure: Frechet distance between feature sets, against closed forms, and its place
in ``evaluate_images``' report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidcolor.evaluation.realism import feature_stats, frechet_distance, realism_distance


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_identical_sets_are_at_distance_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16))
    assert realism_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    # fewer samples than dimensions (rank-deficient covariances, as with 200 photos in 1,280-d)
    y = rng.normal(size=(20, 64))
    assert realism_distance(y, y) == pytest.approx(0.0, abs=1e-6)


def test_shifted_mean_gives_squared_shift():
    rng = np.random.default_rng(1)
    cov = _random_cov(rng, 8)  # not diagonal: the trace term must cancel exactly
    mu = rng.normal(size=8)
    shift = rng.normal(size=8)
    assert frechet_distance(mu, cov, mu + shift, cov) == pytest.approx(float(shift @ shift), rel=1e-9, abs=1e-9)


def test_diagonal_covariances_closed_form():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(expected, rel=1e-9)


def test_non_commuting_2x2_closed_form():
    # for 2x2 PSD products Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M))
    rng = np.random.default_rng(2)
    for _ in range(5):
        sa, sb = _random_cov(rng, 2), _random_cov(rng, 2)
        m = sa @ sb
        tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
        mu_a, mu_b = rng.normal(size=2), rng.normal(size=2)
        expected = float((mu_a - mu_b) @ (mu_a - mu_b) + np.trace(sa) + np.trace(sb) - 2 * tr_sqrt)
        assert frechet_distance(mu_a, sa, mu_b, sb) == pytest.approx(expected, rel=1e-8, abs=1e-10)


def test_samples_approach_the_population_distance():
    rng = np.random.default_rng(3)
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4)) * 2.0 + shift  # covariance 4 I: trace term 4 x (1 - 2)^2 = 4
    assert realism_distance(a, b) == pytest.approx(float(shift @ shift) + 4.0, rel=0.03)
    mu, cov = feature_stats(a)
    assert mu.shape == (4,) and cov.shape == (4, 4)


def test_bad_feature_shape_is_one_clear_error():
    with pytest.raises(ValueError, match="features must be"):
        feature_stats(np.zeros(5))


def test_evaluate_images_reports_realism(tmp_path):
    """Colorized images whose features differ from the originals' are farther than the originals
    themselves (0), and the figure is in the JSON, the table and the contact sheet's caption."""
    import cv2

    from vidcolor.colorizers import load_colorizer
    from vidcolor.evaluation.images import evaluate_images, format_table, sheet_caption

    rng = np.random.default_rng(4)
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(4):
        img = np.zeros((64, 64, 3), np.uint8)
        img[..., rng.integers(0, 3)] = 200
        img[rng.integers(0, 32):, :, :] = rng.integers(0, 256, 3)
        cv2.imwrite(str(d / f"img{i}.png"), img)
    report = evaluate_images(d, load_colorizer("test:luma-ramp"), tmp_path / "rep", render_size=64, log=lambda m: None)
    table = report["table"]
    assert table["original"]["realism_fd"] == pytest.approx(0.0, abs=1e-6)
    assert table["grey"]["realism_fd"] > 0 and table["ours"]["realism_fd"] > 0
    assert report["targets"]["realism_target_met"] == (table["ours"]["realism_fd"] <= 0.5 * table["grey"]["realism_fd"])
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["table"]["ours"]["realism_fd"] == pytest.approx(table["ours"]["realism_fd"])
    assert "realism (FD)" in format_table(report)
    assert any(f"realism {table['grey']['realism_fd']:.1f}" in line for line in sheet_caption(report))
    sheet = cv2.imread(str(tmp_path / "rep" / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 64  # the grid plus the caption band
