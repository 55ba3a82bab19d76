"""End to end through the real stack: Prefect flow, Ray actors, chunks on the store, stitch, mux."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from conftest import CUTS, SCENES
from media_helpers import (frame_pts_times, luma_frame_hashes, make_rotated_clip, mean_ab_per_frame, probe,
                           stream_md5, video_stream)

from vidcolor.colorizers.testing import CHUNK_PALETTE
from vidcolor.store import open_store

pytestmark = pytest.mark.slow
TOTAL = sum(SCENES)


def _plan(store_dir):
    store = open_store(str(store_dir))
    [plan_key] = [k for k in store.list("runs") if k.endswith("plan.json")]
    return store.get_json(plan_key), store, plan_key.rsplit("/", 1)[0]


def test_frames_rate_duration_audio_subtitles_title_survive(pipeline, film_mp4, tmp_path):
    out = tmp_path / "out.mp4"
    result = pipeline(film_mp4, out, tmp_path / "store")
    assert result["frames"] == TOTAL
    src, dst = probe(film_mp4), probe(out)
    sv, dv = video_stream(src), video_stream(dst)
    assert int(dv["nb_read_frames"]) == int(sv["nb_read_frames"]) == TOTAL
    assert Fraction(dv["r_frame_rate"]) == Fraction(sv["r_frame_rate"]) == Fraction(24000, 1001)
    assert Fraction(dv["avg_frame_rate"]) == Fraction(sv["avg_frame_rate"])
    one_frame = 1001 / 24000
    assert abs(float(dst["format"]["duration"]) - float(src["format"]["duration"])) <= one_frame
    # every frame keeps its timestamp
    assert frame_pts_times(out) == pytest.approx(frame_pts_times(film_mp4), abs=1e-6)
    # audio packets are the source's bytes
    assert stream_md5(out, "0:a") == stream_md5(film_mp4, "0:a")
    assert [s["codec_type"] for s in dst["streams"]].count("subtitle") == 1
    assert dst["format"]["tags"]["title"] == "A Test Title"
    # the output is colour: chroma moved away from neutral grey
    ab = mean_ab_per_frame(out)
    assert np.nanmean(np.abs(ab)) > 3


def test_lossless_output_keeps_source_luma_exactly(pipeline, film_mkv, tmp_path):
    out = tmp_path / "out.mkv"
    pipeline(film_mkv, out, tmp_path / "store", codec="ffv1")
    src, dst = luma_frame_hashes(film_mkv), luma_frame_hashes(out)
    assert len(dst) == len(src) == TOTAL
    assert dst == src
    assert video_stream(probe(out))["codec_name"] == "ffv1"
    # subtitles copied into matroska unchanged
    assert stream_md5(out, "0:s") == stream_md5(film_mkv, "0:s")


def test_scene_cuts_and_chunk_plan(pipeline, film_mp4, tmp_path):
    max_frames, overlap = 16, 3
    pipeline(film_mp4, tmp_path / "out.mp4", tmp_path / "store", max_chunk_frames=max_frames, overlap_frames=overlap)
    plan, _, _ = _plan(tmp_path / "store")
    found = plan["scene_starts"][1:]
    assert len(found) == len(CUTS)
    for want, got in zip(CUTS, found):
        assert abs(want - got) <= 1, (CUTS, found)
    bounds = plan["scene_starts"] + [plan["total_frames"]]
    covered = []
    for c in plan["chunks"]:
        a, b = bounds[c["scene"]], bounds[c["scene"] + 1]
        assert a <= c["ext_start"] <= c["core_start"] < c["core_end"] <= c["ext_end"] <= b, "chunk spans a cut"
        assert c["core_end"] - c["core_start"] <= max_frames
        # the requested overlap on every side that has a neighbour in the scene
        if c["core_start"] > a:
            assert c["core_start"] - c["ext_start"] == overlap
        if c["core_end"] < b:
            assert c["ext_end"] - c["core_end"] == overlap
        covered.extend(range(c["core_start"], c["core_end"]))
    assert covered == list(range(plan["total_frames"])), "cores must cover every frame exactly once"
    # long scenes (41 > 2 caps) were cut at the cap
    assert any(c["core_end"] - c["core_start"] == max_frames for c in plan["chunks"])


def test_no_seam_inside_scenes_and_clean_switch_at_cuts(pipeline, film_mp4, tmp_path):
    k = 4
    out = tmp_path / "out.mkv"
    # the blend alone: the stabiliser's scene pass would smooth the stub's per-chunk colours further
    pipeline(film_mp4, out, tmp_path / "store", model="test:chunk-constant", codec="ffv1", max_chunk_frames=12,
             overlap_frames=k, stabilize=False)
    plan, _, _ = _plan(tmp_path / "store")
    ab = mean_ab_per_frame(out)
    assert len(ab) == TOTAL
    chunks = plan["chunks"]
    boundaries_checked = 0
    for left, right in zip(chunks, chunks[1:]):
        colour_l = CHUNK_PALETTE[left["index"] % len(CHUNK_PALETTE)]
        colour_r = CHUNK_PALETTE[right["index"] % len(CHUNK_PALETTE)]
        diff = float(np.linalg.norm(colour_l - colour_r))
        m = right["core_start"]
        if left["scene"] == right["scene"]:
            # smooth ramp: no frame-to-frame step larger than 2/K of the colours' difference
            window = ab[m - k - 1 : m + k + 1]
            steps = np.linalg.norm(np.diff(window, axis=0), axis=1)
            assert steps.max() <= 2 / k * diff, (m, steps, diff)
            # and it really blends: the middle of the overlap is between the two colours
            mid = ab[m - 1 : m + 1].mean(axis=0)
            assert np.linalg.norm(mid - colour_l) > 0.25 * diff and np.linalg.norm(mid - colour_r) > 0.25 * diff
            boundaries_checked += 1
        else:
            # hard cut: the last frame before it is the left colour, the first after it the right
            assert np.linalg.norm(ab[m - 1] - colour_l) < 0.15 * diff, (m, ab[m - 1], colour_l)
            assert np.linalg.norm(ab[m] - colour_r) < 0.15 * diff, (m, ab[m], colour_r)
    assert boundaries_checked >= 3


def test_s3_input_output_and_store(pipeline, film_mp4, tmp_path, s3_server):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="films")
    s3.create_bucket(Bucket="state")
    s3.upload_file(str(film_mp4), "films", "in/film.mp4")
    result = pipeline("s3://films/in/film.mp4", "s3://films/out/film-colour.mp4", "s3://state/vidcolor")
    assert result["frames"] == TOTAL
    local = tmp_path / "down.mp4"
    s3.download_file("films", "out/film-colour.mp4", str(local))
    dv = video_stream(probe(local))
    assert int(dv["nb_read_frames"]) == TOTAL
    assert Fraction(dv["r_frame_rate"]) == Fraction(24000, 1001)
    assert stream_md5(local, "0:a") == stream_md5(film_mp4, "0:a")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="state", Prefix="vidcolor/runs/")["Contents"]]
    assert any(k.endswith("plan.json") for k in keys)
    assert sum(k.endswith("done.json") for k in keys) >= 3
    run_json = json.loads(s3.get_object(Bucket="state", Key=next(k for k in keys if k.endswith("run.json")))["Body"].read())
    assert run_json["status"] == "succeeded"
    # nothing else was written next to the output
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="films", Prefix="out/")["Contents"]] == ["out/film-colour.mp4"]


def test_variable_frame_rate_keeps_every_timestamp(pipeline, tmp_path):
    import subprocess

    src = tmp_path / "vfr.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24", "-frames:v", "60",
                    "-vf", "hue=s=0,setpts='if(lt(N,20),N*2,N+20)/24/TB'", "-fps_mode", "vfr",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src)], check=True)
    src_times = frame_pts_times(src)
    gaps = {round(b - a, 4) for a, b in zip(src_times, src_times[1:])}
    assert len(gaps) == 2, "the test film must really be VFR"
    out = tmp_path / "out.mp4"
    pipeline(src, out, tmp_path / "store", max_chunk_frames=16, overlap_frames=3)
    assert frame_pts_times(out) == pytest.approx(src_times, abs=1e-6)
    src_v, out_v = video_stream(probe(src)), video_stream(probe(out))
    assert out_v["r_frame_rate"] == src_v["r_frame_rate"]
    assert int(out_v["nb_read_frames"]) == 60
    # avg_frame_rate of a VFR stream is frames / duration: the duration must be within one frame
    assert abs(float(out_v["duration"]) - float(src_v["duration"])) < 1 / 24


@pytest.mark.parametrize("degrees", [90, 270])
def test_display_rotation_survives(pipeline, tmp_path, degrees):
    """Phone and camera footage stores pictures unrotated plus a display matrix: the output must
    keep both, or the film plays sideways."""
    src = tmp_path / "rotated.mp4"
    make_rotated_clip(src, degrees, "320x176", 30)
    src_v = video_stream(probe(src))
    src_rotation = [sd["rotation"] for sd in src_v.get("side_data_list", []) if "rotation" in sd]
    assert src_rotation, "the test film must carry a display matrix"
    out = tmp_path / "out.mp4"
    pipeline(src, out, tmp_path / "store", max_chunk_frames=16, overlap_frames=3)
    out_v = video_stream(probe(out))
    assert [sd["rotation"] for sd in out_v.get("side_data_list", []) if "rotation" in sd] == src_rotation
    assert (out_v["width"], out_v["height"]) == (src_v["width"], src_v["height"]) == (320, 176)
    assert int(out_v["nb_read_frames"]) == 30
