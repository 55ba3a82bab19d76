"""The CLI as a user meets it: help, a Prefect server via PREFECT_API_URL, batches, the real film."""

from __future__ import annotations

import json
import urllib.request
from fractions import Fraction

import pytest
from conftest import SCENES, run_cli
from media_helpers import probe, stream_md5, video_stream

TOTAL = sum(SCENES)


def test_help_is_complete():
    top = run_cli(["--help"], env={"COLUMNS": "200"})
    assert top.returncode == 0
    for cmd in ("colorize", "batch", "image", "eval", "train", "sample"):
        assert cmd in top.stdout, cmd
    sub = run_cli(["colorize", "--help"], env={"COLUMNS": "200"})
    assert sub.returncode == 0
    for opt in ("--output", "--store", "--workers", "--gpus-per-worker", "--render-size", "--max-chunk-frames",
                "--overlap-frames", "--codec", "--crf", "--model", "h264", "ffv1", "hevc", "prores"):
        assert opt in sub.stdout, opt




@pytest.mark.slow
def test_colorize_against_a_prefect_server(prefect_server, film_mp4, tmp_path):
    out = tmp_path / "out.mp4"
    result = run_cli(["colorize", film_mp4, "-o", out, "--store", tmp_path / "store", "--model", "test:luma-ramp",
                      "--render-size", "128", "--json"], env={"PREFECT_API_URL": prefect_server})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["frames"] == TOTAL and out.exists()
    req = urllib.request.Request(prefect_server + "/flow_runs/filter", data=b"{}", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        runs = json.load(r)
    completed = [run for run in runs if run["state_type"] == "COMPLETED"]
    assert len(completed) == 1, runs
    with urllib.request.urlopen(f"{prefect_server}/flows/{completed[0]['flow_id']}", timeout=10) as r:
        assert json.load(r)["name"] == "colorize-film"


@pytest.mark.slow
def test_archive_batch_reports_bad_films_and_goes_on(ray_cluster, prefect_harness, film_mp4, tmp_path):
    from flows.colorize_archive import colorize_archive
    from vidcolor.settings import ChromaSettings

    bad = tmp_path / "broken.mp4"
    bad.write_text("not a film")
    outdir = tmp_path / "out"
    outdir.mkdir()
    result = colorize_archive([str(bad), str(film_mp4)], str(outdir), chroma=ChromaSettings(model="test:luma-ramp", render_size=128),
                              store_uri=str(tmp_path / "store"))
    assert list(result["succeeded"]) == [str(film_mp4)]
    assert "broken.mp4" in result["failed"][str(bad)]
    assert sorted(p.name for p in outdir.iterdir()) == ["film-colour.mp4", "vidcolor-report.parquet"]  # none for broken


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_film_keeps_frames_and_rate(shared_data, tmp_path):
    src = shared_data / "videos" / "a-bomb_blast_effects_part.mp4"
    if not src.exists():
        pytest.skip(f"{src} is absent")
    out = tmp_path / "a-bomb-colour.mp4"
    result = run_cli(["colorize", src, "-o", out, "--store", tmp_path / "store", "--workers", "2"], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    s, d = video_stream(probe(src)), video_stream(probe(out))
    assert int(d["nb_read_frames"]) == int(s["nb_read_frames"]) == 360
    assert Fraction(d["r_frame_rate"]) == Fraction(s["r_frame_rate"]) == 29
    assert Fraction(d["avg_frame_rate"]) == 29
    assert (d["width"], d["height"]) == (432, 320)
    assert stream_md5(src, "0:v").startswith("MD5=")  # the source is still readable, untouched
