"""vidcolor report / preview and the per-run temporal summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from media_helpers import probe
from dataclasses import asdict

from vidcolor.plan import chunks_for_scenes
from vidcolor.state import RunLayout, pack_array, write_chunk_done
from vidcolor.store import open_store


def _fake_run(store, layout, scene_starts, total, planted_chunk=None, h=32, w=48):
    """A finished run's chunk files without any model: luma a moving gradient, chroma a smooth
    function of it; ``planted_chunk`` predicts a different colour (a seam at its joins)."""
    chunks = chunks_for_scenes(scene_starts, total, max_frames=10, overlap=3)
    xs = np.arange(w, dtype=np.float32)
    frames = np.stack([np.tile(((xs + 2 * t) % w) / w * 200 + 30, (h, 1)) for t in range(total)]).astype(np.uint8)
    for c in chunks:
        luma = frames[c.ext_start : c.ext_end]
        ab = np.stack([(luma.astype(np.float32) - 128) / 8, np.full(luma.shape, 10.0, np.float32)], -1)
        if c.index == planted_chunk:
            ab[..., 1] += 25
        store.put_bytes(layout.chunk(c.index, "source.npz"), pack_array(luma=luma))
        write_chunk_done(store, layout, c.index, pack_array(ab=np.rint(ab).astype(np.int8)), c.ext_frames, {})
    plan = {"video": {"full_range": False}, "total_frames": total, "scene_starts": scene_starts,
            "settings": {"overlap_frames": 3}, "chunks": [asdict(c) for c in chunks]}
    store.put_json(layout.plan, plan)
    return plan


def test_run_summary_finds_a_seam_and_ignores_cuts(tmp_path):
    from vidcolor.report import run_temporal_summary

    store = open_store(str(tmp_path / "store"))
    clean_layout, seam_layout = RunLayout("clean"), RunLayout("seam")
    clean = _fake_run(store, clean_layout, [0, 25], 50)
    s = run_temporal_summary(store, clean_layout, clean)
    joins = [int(k) for k in s["seams"]]
    assert 25 not in joins and joins  # a cut is no join
    assert s["max_seam_score"] < 1.5 and s["cdc"] is not None
    seam = _fake_run(store, seam_layout, [0, 25], 50, planted_chunk=1)
    s2 = run_temporal_summary(store, seam_layout, seam)
    c1 = seam["chunks"][1]
    assert s2["max_seam_score"] > 2  # spread over the 6-frame ramp, still well above 1
    # the planted chunk is blended in over its overlaps, so the jump spreads but peaks at its joins' ramps
    assert c1["ext_start"] <= s2["largest_jump"]["frame"] <= c1["ext_end"]
    assert s2["cdc"] > s["cdc"]
    # without a blend (a step ramp) the whole jump lands on one frame pair
    assert run_temporal_summary(store, seam_layout, seam, ramp="step")["max_seam_score"] > 2 * s2["max_seam_score"]


def test_report_of_a_bare_video_with_an_original(film_mp4, tmp_path):
    from vidcolor.report import resolve_target, write_report

    out = tmp_path / "rep"
    rep = write_report(resolve_target(str(film_mp4)), out, original=str(film_mp4), measure_short_side=120)
    s = rep["summary"]
    assert s["scene_starts"] == [0, 30, 71]  # found by the split's detector
    assert s["cdc_ratio"] == pytest.approx(1.0) and s["warp_error_ratio"] == pytest.approx(1.0)
    assert s["psnr"] == 100.0
    assert sorted(rep["files"]) == ["contact_sheet.png", "scenes.png", "timeline.png"]
    assert len(rep["scenes"]) == 3
    saved = json.loads((out / "report.json").read_text())
    assert saved["summary"]["frames"] == 106 and len(saved["series"]["chroma_change"]) == 106


def test_report_and_preview_refuse_bad_targets(tmp_path, film_mp4):
    r = run_cli(["report", tmp_path / "nope", "-o", tmp_path / "rep", "--store", tmp_path / "store"], timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("vidcolor: error: ") and "neither a video file" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli(["preview", film_mp4, "-o", tmp_path / "p.mp4", "--store", tmp_path / "store"], timeout=120)
    assert r.returncode == 2 and "no finished run" in r.stderr
    assert not (tmp_path / "p.mp4").exists()


@pytest.mark.slow
def test_colorize_run_records_its_summary_then_report_and_preview(pipeline, film_mp4, tmp_path):
    store_dir, out = tmp_path / "store", tmp_path / "out.mp4"
    result = pipeline(film_mp4, out, store_dir, model="test:luma-ramp", max_chunk_frames=12, overlap_frames=3)
    run = json.loads((store_dir / "runs" / result["run_id"] / "run.json").read_text())
    t = run["invocations"][-1]["summary"]["temporal"]  # this invocation's measures
    assert t["cdc"] is not None and t["max_seam_score"] is not None
    assert set(t["seams"]) == {"12", "21", "42", "54", "62", "83", "95"}  # every join but the cuts 30 and 71
    assert all(np.isfinite(v) for v in t["seams"].values())

    r = run_cli(["report", result["run_id"], "--store", store_dir, "-o", tmp_path / "rep", "--json"], timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["scene_starts"] == [0, 30, 71]
    assert set(summary["seams"]) == set(t["seams"])

    r = run_cli(["preview", film_mp4, "--store", store_dir, "-o", tmp_path / "side.mp4", "--height", "120"], timeout=300)
    assert r.returncode == 0, r.stderr
    info = probe(tmp_path / "side.mp4")
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 120)
    assert any(s["codec_type"] == "audio" for s in info["streams"])
