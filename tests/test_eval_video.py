"""``vidcolor eval video``: desaturate a colour clip, colorize it through the pipeline, compare."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from conftest import run_cli
from vidcolor.evaluation.metrics import PSNR_CAP


def _colour_clip(path, frames=30, size="192x128"):
    """A moving colour test pattern (ffmpeg's testsrc2 at a third of its saturation, nearer to
    footage: colourfulness about 80 instead of 250), H.264 like a user's clip."""
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25",
                    "-frames:v", str(frames), "-vf", "hue=s=0.35", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "16", str(path)],
                   check=True)
    return path


def test_comparison_of_a_clip_with_itself_and_with_its_grey_copy(tmp_path):
    """The comparison half alone (real ffmpeg, no pipeline): the original against itself is perfect,
    its desaturated copy has no colour, keeps the luma and is far from the original's features."""
    from vidcolor.evaluation.video import compare_clips, desaturate

    clip = _colour_clip(tmp_path / "clip.mp4", frames=12)
    grey = tmp_path / "grey.mkv"
    desaturate(clip, grey, frames=8)
    same = compare_clips(clip, grey, clip, frames=8)
    assert same["frames"] == 8
    assert same["psnr_db"] == PSNR_CAP and same["colourfulness_ratio"] == pytest.approx(1.0)
    assert same["realism_fd"] == pytest.approx(0.0, abs=1e-6)
    assert same["original_colourfulness"] > 20 and same["grey_colourfulness"] < 1.0
    assert same["grey_psnr_db"] < 30 and same["grey_realism_fd"] > 0
    as_output = compare_clips(clip, grey, grey, frames=8)  # "colorizing" to grey = the baseline
    assert as_output["psnr_over_grey_db"] == pytest.approx(0.0, abs=1e-9)
    assert as_output["luma_psnr_db"] > 40  # luma kept, frames aligned
    assert as_output["realism_fd"] == pytest.approx(as_output["grey_realism_fd"])


def test_missing_clip_is_one_error_line(tmp_path):
    out = tmp_path / "report.json"
    r = run_cli(["eval", "video", tmp_path / "nope.mp4", "-o", out])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"vidcolor: error: {tmp_path / 'nope.mp4'}: no such file", r.stderr
    assert not out.exists()


@pytest.mark.slow
def test_eval_video_through_the_pipeline(tmp_path, ray_cluster, prefect_harness):
    """The shipped model on a synthetic colour clip, first 20 of 30 frames, through the real flow."""
    from flows.colorize_film import run_colorize_film
    from vidcolor.evaluation.video import evaluate_video, format_summary, write_report
    from vidcolor.settings import ChromaSettings, ExecutionSettings

    clip = _colour_clip(tmp_path / "clip.mp4", frames=30)
    report = evaluate_video(clip, run_colorize_film, ChromaSettings(model="default", render_size=128),
                            ExecutionSettings(workers=1), frames=20, work_dir=tmp_path, log=lambda m: None)
    assert report["frames"] == 20 and (report["width"], report["height"]) == (192, 128)
    assert report["model"].startswith("vidcolor-gan-mnv2-")
    assert report["luma_psnr_db"] > 40  # the pipeline kept the luma and the frames line up
    assert report["grey_colourfulness"] < 1.0 < report["colourfulness"]
    assert report["colourfulness_ratio"] == pytest.approx(report["colourfulness"] / report["original_colourfulness"])
    assert report["psnr_over_grey_db"] == pytest.approx(report["psnr_db"] - report["grey_psnr_db"])
    assert 10 < report["psnr_db"] < PSNR_CAP and report["realism_fd"] > 0 and report["grey_realism_fd"] > 0
    per_frame = report["per_frame"]
    assert len(per_frame) == 20 and report["psnr_db"] == pytest.approx(np.mean([f["psnr"] for f in per_frame]))
    assert list(tmp_path.glob("vidcolor-eval-video-*")) == []  # temporary films removed
    write_report(report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["frames"] == 20
    assert report["clip"] in format_summary(report)
