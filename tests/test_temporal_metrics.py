"""Temporal metrics on synthetic clips whose answers are known."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vidcolor.evaluation.temporal import (FlowEstimator, cdc, cdc_from_histograms, channel_histograms,
                                          js_divergence, measure_frames, per_scene, plan_joins, seam_scores,
                                          summarize, visible_mask, warp)

H, W = 72, 96


def texture(seed: int = 0, h: int = H, w: int = W + 64) -> np.ndarray:
    """Smooth random grey texture with enough structure for optical flow."""
    rng = np.random.default_rng(seed)
    x = rng.random((h // 4, w // 4)).astype(np.float32)
    x = cv2.resize(x, (w, h), interpolation=cv2.INTER_CUBIC)
    x = cv2.GaussianBlur(x, (0, 0), 1.5)
    return np.clip((x - x.min()) / (x.max() - x.min()) * 200 + 25, 0, 255).astype(np.uint8)


def tinted(grey: np.ndarray, tint=(1.0, 0.8, 0.6)) -> np.ndarray:
    rgb = grey[..., None].astype(np.float32) * np.asarray(tint, np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def panning_clip(n: int, step: int = 2, tint=(1.0, 0.8, 0.6)) -> list[np.ndarray]:
    tex = texture()
    return [tinted(tex[:, k * step : k * step + W], tint) for k in range(n)]


def test_histograms_are_normalised_per_channel():
    h = channel_histograms(panning_clip(1)[0])
    assert h.shape == (3, 256)
    np.testing.assert_allclose(h.sum(axis=1), 1.0)


def test_js_divergence_known_values():
    p = np.zeros(256)
    p[0] = 1
    q = np.zeros(256)
    q[255] = 1
    assert js_divergence(p, p) == 0
    assert js_divergence(p, q) == pytest.approx(math.log(2))


def test_cdc_static_clip_is_zero():
    frame = panning_clip(1)[0]
    assert cdc([frame] * 8) == 0.0


def test_cdc_alternating_frames_known_answer():
    # black/white alternating: every d=1 pair has disjoint histograms (JS = ln 2), d=2 and d=4 pairs
    # are equal (JS = 0), so CDC = ln 2 / 3 (TCVC weights the dilations 1/3 each).
    black = np.zeros((8, 8, 3), np.uint8)
    white = np.full((8, 8, 3), 255, np.uint8)
    frames = [black, white] * 4
    assert cdc(frames) == pytest.approx(math.log(2) / 3)
    # only d = 1 pairs inside the scenes [0, 2), [2, 4), ... : every one is ln 2
    hists = np.stack([channel_histograms(f) for f in frames])
    assert cdc_from_histograms(hists, scene_starts=[0, 2, 4, 6]) == pytest.approx(math.log(2))


def test_cdc_grows_with_flicker():
    clip = panning_clip(12)
    rng = np.random.default_rng(1)
    flicker = [np.clip(f.astype(np.int16) + rng.integers(-20, 20, size=3), 0, 255).astype(np.uint8) for f in clip]
    assert cdc(flicker) > 3 * cdc(clip)


def test_flow_and_visibility_on_a_pan():
    clip = panning_clip(2, step=3)
    y0, y1 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip)
    flow = FlowEstimator()
    fw, bw = flow(y0, y1), flow(y1, y0)
    inner = (slice(8, -8), slice(8, -8))
    # content moves left by 3 px: frame 0's pixel x is found at x - 3 in frame 1
    assert np.median(fw[inner][..., 0]) == pytest.approx(-3, abs=0.3)
    vis = visible_mask(fw, bw)
    assert vis[inner].mean() > 0.9
    assert not vis[:, -2:].any() or vis[:, :3].mean() < 0.5  # the strip that leaves the frame is not visible
    err = np.abs(warp(y1.astype(np.float32), fw) - y0)[inner][vis[inner]]
    assert err.mean() < 3


def test_static_clip_scores_zero_everywhere():
    frame = panning_clip(1)[0]
    m = measure_frames([frame] * 10, original=[frame] * 10)
    s = summarize(m, scene_starts=[0], joins=[4])
    assert s["cdc"] == 0 and s["warp_error"] == 0 and s["original_warp_error"] == 0
    assert s["median_chroma_change"] == 0
    assert s["seams"] == {"4": 0.0} and s["original_seams"] == {"4": 0.0}
    assert s["psnr"] == 100.0


def test_warp_error_separates_flicker_from_motion():
    clip = panning_clip(10)
    rng = np.random.default_rng(2)
    flicker = [tinted(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (1.0, 0.8 + rng.uniform(-0.1, 0.1), 0.6)) for f in clip]
    steady = summarize(measure_frames(clip, original=clip))
    flick = summarize(measure_frames(flicker, original=clip))
    assert steady["warp_error_ratio"] == pytest.approx(1.0)
    assert steady["warp_error"] < 2e-4  # motion alone costs (almost) nothing
    assert flick["warp_error"] > 10 * steady["warp_error"]
    assert flick["warp_error_ratio"] > 10
    assert steady["chroma_warp_error"] < 0.2 and flick["chroma_warp_error_ratio"] > 10
    assert flick["psnr"] < steady["psnr"]


def test_planted_colour_jump_is_found_at_its_frame():
    n, jump = 24, 13
    clip = panning_clip(n)
    # a small drift in tint every frame (the usual change), and a large step at ``jump``
    frames = [tinted(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (1.0, 0.8 + 0.004 * k + (0.2 if k >= jump else 0), 0.6))
              for k, f in enumerate(clip)]
    m = measure_frames(frames, fidelity=False)
    s = summarize(m, scene_starts=[0], joins=[6, jump, 20])
    assert s["largest_jump"]["frame"] == jump
    assert s["largest_jump"]["ratio"] > 5
    assert s["seams"][str(jump)] > 5
    assert s["seams"]["6"] < 2 and s["seams"]["20"] < 2  # ordinary frames: about the median
    assert s["max_seam_score"] == s["seams"][str(jump)]
    # motion-compensated, the pan itself costs nothing and the jump stands out even more
    assert s["flow_seams"][str(jump)] > 5 and s["flow_seams"]["6"] < 2


def test_cuts_are_not_flicker_and_not_seams():
    a = panning_clip(8)
    b = [tinted(texture(5)[:, k * 2 : k * 2 + W], (0.5, 0.9, 1.0)) for k in range(8)]
    m = measure_frames(a + b, scene_starts=[0, 8], fidelity=False)
    s = summarize(m, scene_starts=[0, 8], joins=[4, 8, 12])
    assert math.isnan(m.warp_error[7])  # pair (7, 8) crosses the cut
    assert s["cdc_in_scenes"] < s["cdc"]  # the cut's histogram jump counts only for the whole clip
    assert set(s["seams"]) == {"4", "12"}  # the join at the cut is no seam
    assert s["largest_jump"]["frame"] != 8
    rows = per_scene(m, [0, 8])
    assert [r["start"] for r in rows] == [0, 8] and all(r["warp_error"] < 1e-3 for r in rows)


def test_joins_of_a_plan_skip_cuts():
    from vidcolor.plan import chunks_for_scenes

    assert plan_joins(chunks_for_scenes([0, 96], 192, max_frames=48, overlap=4)) == [48, 144]
    changes = np.array([np.nan, 1, 1, 1, 9, 1, 1])
    assert seam_scores(changes, [0], [4]) == {4: 9.0}


def test_cdc_accumulator_equals_the_whole_series_computation():
    """The film summary's CDC, fed a frame at a time in constant memory, is cdc_from_histograms."""
    from vidcolor.evaluation.temporal import CdcAccumulator

    rng = np.random.default_rng(3)
    hists = rng.random((40, 3, 256))
    hists /= hists.sum(-1, keepdims=True)
    for starts in (None, [0, 9, 10, 25]):
        acc = CdcAccumulator(scene_starts=starts)
        for h in hists:
            acc.add(h)
        assert acc.value() == pytest.approx(cdc_from_histograms(hists, scene_starts=starts), rel=1e-12)
    assert CdcAccumulator().value() is None
    one = CdcAccumulator()
    one.add(hists[0])
    assert one.value() is None  # no pair yet
