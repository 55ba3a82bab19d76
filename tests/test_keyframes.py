"""Colour keyframes (issue 12): reading and checking a keyframes folder, which keyframe steers which
chunk, propagation of a keyframe's chroma through a moving clip, and the whole pipeline: a scene cut
between two keyframes of different colours, and a changed keyframe that redoes only its scene."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.conftest import CUTS, SCENES, run_cli
from vidcolor.color import luma_to_lightness, rgb_to_lab
from vidcolor.errors import BadInputError
from vidcolor.keyframes import (Keyframe, keyframes_by_scene, nearest_keyframe, read_keyframes, segment_digest,
                                steering)
from vidcolor.media.still import write_image_rgb
from vidcolor.plan import Plan, PlanSettings, chunks_for_scenes
from vidcolor.propagate import propagate_chunk

FILM = (320, 240)
RENDER = (160, 128)


def flat(rgb, size=FILM):
    return np.broadcast_to(np.asarray(rgb, np.uint8), (size[1], size[0], 3)).copy()


RED, BLUE, GREEN = (170, 100, 90), (90, 110, 170), (100, 160, 100)  # inside the gamut at mid lightness


def ab_of_rgb(rgb):
    return rgb_to_lab(np.asarray(rgb, np.float32)[None, None] / 255.0)[0, 0, 1:]


# --- reading and checking -------------------------------------------------------------------------

def test_reads_keyframes_named_by_index_at_the_render_size(tmp_path):
    write_image_rgb(tmp_path / "000120.png", flat(RED, (640, 480)))
    write_image_rgb(tmp_path / "7.jpg", flat(BLUE, (160, 120)))
    kfs = read_keyframes(str(tmp_path), FILM, 200, RENDER)
    assert [k.index for k in kfs] == [7, 120]
    assert kfs[1].ab.shape == (128, 160, 2) and kfs[1].ab.dtype == np.int8
    assert np.abs(kfs[1].ab.reshape(-1, 2).mean(0) - ab_of_rgb(RED)).max() < 1.5
    # the digest follows the chroma, not the file
    write_image_rgb(tmp_path / "000120.png", flat(RED, (320, 240)))
    assert read_keyframes(str(tmp_path), FILM, 200, RENDER)[1].digest == kfs[1].digest
    write_image_rgb(tmp_path / "000120.png", flat(BLUE, (320, 240)))
    assert read_keyframes(str(tmp_path), FILM, 200, RENDER)[1].digest != kfs[1].digest


@pytest.mark.parametrize("files, needle", [
    (None, "no such keyframes folder"),
    ({}, "holds no keyframes"),
    ({"hero.png": RED}, "is not named by a frame index"),
    ({"12.png": RED, "0012.jpg": BLUE}, "keep one of them"),
    ({"200.png": RED}, "past the film's end (it has 200 frames, 0-199)"),
    ({"5.png": (128, 128, 128)}, "is grey"),
    ({"5.png": "wide"}, "a keyframe must show the whole frame"),
    ({"5.png": "junk"}, "not a readable image"),
])
def test_bad_keyframes_folder_is_one_line(tmp_path, files, needle):
    folder = tmp_path / "kf"
    if files is not None:
        folder.mkdir()
        for name, colour in files.items():
            if colour == "wide":
                write_image_rgb(folder / name, flat(RED, (400, 240)))
            elif colour == "junk":
                (folder / name).write_bytes(b"not an image")
            else:
                write_image_rgb(folder / name, flat(colour))
    with pytest.raises(BadInputError) as e:
        read_keyframes(str(folder), FILM, 200, RENDER)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_aspect_tolerance_is_about_one_percent(tmp_path):
    write_image_rgb(tmp_path / "1.png", flat(RED, (322, 240)))  # 0.6 % wider: a cropped scan
    assert len(read_keyframes(str(tmp_path), FILM, 10, RENDER)) == 1
    write_image_rgb(tmp_path / "1.png", flat(RED, (326, 240)))  # 1.9 %
    with pytest.raises(BadInputError):
        read_keyframes(str(tmp_path), FILM, 10, RENDER)


def test_cli_refuses_bad_keyframes_with_exit_2_and_writes_nothing(film_mp4, tmp_path):
    kf = tmp_path / "kf"
    kf.mkdir()
    write_image_rgb(kf / "000031.png", flat((120, 120, 120)))
    out, store = tmp_path / "out.mp4", tmp_path / "store"
    r = run_cli(["colorize", film_mp4, "-o", out, "--keyframes", kf, "--model", "test:luma-ramp", "--store", store])
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "000031.png" in lines[0] and "is grey" in lines[0]
    assert not out.exists() and not store.exists()


# --- which keyframe steers which chunk ----------------------------------------------------------------

def make_plan(scene_starts, total, cap=10, overlap=2):
    from vidcolor.media.probe import VideoInfo

    info = VideoInfo("x", "mp4", 320, 240, "24/1", "24/1", "1/24", total, None, 0.0, "yuv420p", "h264", False,
                     "bt601", None, None, None, 0, 0, 0, (), False, None)
    return Plan("r", info, total, RENDER, PlanSettings(cap, overlap, 27.0, 8), tuple(scene_starts),
                tuple(chunks_for_scenes(list(scene_starts), total, cap, overlap)))


def kf(index, colour):
    return Keyframe(index, f"{index}.png", np.broadcast_to(np.rint(ab_of_rgb(colour)).astype(np.int8), RENDER[::-1] + (2,)).copy())


def test_a_keyframe_steers_its_own_scene_and_lends_its_palette_to_scenes_without():
    assert keyframes_by_scene([0, 30, 71], 106, [5, 40, 50]) == {0: [5], 1: [40, 50]}
    assert nearest_keyframe(71, 106, [5, 40, 50]) == 50
    assert nearest_keyframe(0, 10, [20, 40]) == 20
    plan = make_plan([0, 30, 71], 106)
    red, blue = kf(5, RED), kf(40, BLUE)
    steer = steering(plan, [red, blue])
    for c in plan.chunks:
        s = steer[c.index]
        if c.scene == 0:
            assert s.frames == (5,) and s.palette == red.palette_text()
        elif c.scene == 1:
            assert s.frames == (40,) and s.palette == blue.palette_text()
        else:  # no keyframe: automatic, led by the nearest keyframe's palette
            assert s.frames == () and not s.propagates and s.palette == blue.palette_text()
    assert all(c.index not in steering(plan, [red, blue], lead_palette=False) for c in plan.chunks if c.scene == 2)
    # a chunk of scene 1 far from frame 40 names the sources holding the luma in between, in its scene only
    far = [c for c in plan.chunks if c.scene == 1][-1]
    srcs = steer[far.index].sources
    assert srcs and min(s.start for s in srcs) <= 40 and all(30 <= s.start and s.end <= 71 for s in srcs)
    covered = set().union(*(range(s.start, s.end) for s in srcs), range(far.ext_start, far.ext_end))
    assert set(range(40, far.ext_end)) <= covered


def test_a_changed_keyframe_changes_only_the_digests_it_steers():
    plan = make_plan([0, 30, 71], 106)
    before = steering(plan, [kf(5, RED), kf(40, BLUE)], lead_palette=False)
    after = steering(plan, [kf(5, RED), kf(40, GREEN)], lead_palette=False)
    changed = {c.index for c in plan.chunks if c.index in before and before[c.index].digest != after[c.index].digest}
    assert changed == {c.index for c in plan.chunks if c.scene == 1}
    seg_changed = {c.index for c in plan.chunks
                   if segment_digest(plan, before, c.index) != segment_digest(plan, after, c.index)}
    assert seg_changed == changed
    assert segment_digest(plan, {}, 0) == ""
    # with the palette lead, a scene without keyframes borrows the nearest one's palette: it follows it too
    led_before = steering(plan, [kf(5, RED), kf(40, BLUE)])
    led_after = steering(plan, [kf(5, RED), kf(40, GREEN)])
    assert {c.index for c in plan.chunks if led_before[c.index].digest != led_after[c.index].digest} == \
        {c.index for c in plan.chunks if c.scene in (1, 2)}


# --- propagation on a synthetic moving clip -----------------------------------------------------------

H, W = 96, 128


def moving_clip(n=48, seed=0):
    """A textured plane moving back and forth, with a colour field painted on it (so the colour
    moves with the content and is no function of the luma)."""
    rng = np.random.default_rng(seed)
    big_w = W + 80
    tex = cv2.resize(rng.random((H // 4, big_w // 4)).astype(np.float32), (big_w, H), interpolation=cv2.INTER_CUBIC)
    tex = cv2.GaussianBlur(tex, (0, 0), 1.2)
    tex = np.clip((tex - tex.min()) / (tex.max() - tex.min()) * 180 + 40, 0, 255).astype(np.uint8)
    colour = cv2.resize(rng.random((H // 16, big_w // 16, 2)).astype(np.float32), (big_w, H),
                        interpolation=cv2.INTER_CUBIC) * 90 - 45
    xs = [int(round(30 + 12 * np.sin(k / 6))) for k in range(n)]  # content mostly stays in the picture
    return np.stack([tex[:, x : x + W] for x in xs]), np.stack([colour[:, x : x + W] for x in xs])


def psnr_ab(a, b):
    return float(10 * np.log10(255.0 ** 2 / np.mean((np.asarray(a, np.float32) - b) ** 2)))


@pytest.mark.parametrize("keyframe, chunk", [(0, (0, 48)), (4, (20, 48)), (44, (0, 24))])
def test_propagation_carries_the_keyframe_far_above_the_model(keyframe, chunk):
    luma, truth = moving_clip()
    a, b = chunk
    gan = np.zeros((b - a, H, W, 2), np.float32)  # a model that knows no colour
    kab = np.rint(truth[keyframe]).astype(np.int8)
    out, conf = propagate_chunk(a, b, lambda t: luma[t], gan, {keyframe: (kab, luma[keyframe])},
                                luma_to_lightness(luma[a:b]))
    if a <= keyframe < b:  # at the keyframe: its chroma exactly
        assert np.array_equal(out[keyframe - a], kab.astype(np.float32))
        assert conf[keyframe - a].min() == 1.0
    got = psnr_ab(out, truth[a:b])
    grey = psnr_ab(gan, truth[a:b])
    assert got > grey + 8, (got, grey)
    # the colour lasts: the chunk's frames farthest from the keyframe are still well above grey
    far = slice(-8, None) if keyframe < a + 8 else slice(0, 8)
    assert psnr_ab(out[far], truth[a:b][far]) > psnr_ab(gan[far], truth[a:b][far]) + 4


def test_several_keyframes_each_frame_follows_the_nearest():
    luma, truth = moving_clip(seed=1)
    gan = np.zeros((48, H, W, 2), np.float32)
    wrong = np.rint(truth[0] * 0 + np.array([40, -40])).astype(np.int8)  # a keyframe of other colours at the end
    out, _ = propagate_chunk(0, 48, lambda t: luma[t], gan,
                             {0: (np.rint(truth[0]).astype(np.int8), luma[0]), 47: (wrong, luma[47])},
                             luma_to_lightness(luma))
    d_first = np.abs(out[:12] - truth[:12]).mean()
    d_last = np.abs(out[-12:] - wrong.astype(np.float32)).mean()
    assert d_first < 6 and d_last < 6, (d_first, d_last)


# --- the grey frames to paint -------------------------------------------------------------------------

def test_grey_frames_of_every_scene_and_chosen_ones(film_mp4, tmp_path):
    from vidcolor.keyframes import write_grey_keyframes
    from vidcolor.media.still import read_image_rgb

    out = tmp_path / "grey"
    paths = write_grey_keyframes(str(film_mp4), str(out), frames=[50])
    names = [p.rsplit("/", 1)[-1] for p in paths]
    assert names == ["000000.png", f"{CUTS[0]:06d}.png", "000050.png", f"{CUTS[1]:06d}.png"]
    img = read_image_rgb(out / "000050.png")
    assert img.shape == (240, 320, 3) and (img[..., 0] == img[..., 2]).all()
    with pytest.raises(BadInputError, match="past the film's end"):
        write_grey_keyframes(str(film_mp4), str(tmp_path / "g2"), frames=[sum(SCENES)])
    assert not (tmp_path / "g2").exists()


# --- through the pipeline ------------------------------------------------------------------------------

def mean_ab_by_frame(path):
    from tests.media_helpers import mean_ab_per_frame

    return mean_ab_per_frame(path)


@pytest.mark.slow
def test_each_scene_takes_its_own_keyframe_and_a_changed_one_redoes_only_its_scene(ray_cluster, prefect_harness,
                                                                                  film_mp4, tmp_path):
    from flows.colorize_film import run_colorize_film
    from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings

    kf = tmp_path / "kf"
    kf.mkdir()
    write_image_rgb(kf / "000004.png", flat(RED))  # scene 0: frames 0-29
    write_image_rgb(kf / "40.png", flat(BLUE))  # scene 1: frames 30-70; scene 2 has none
    store = tmp_path / "store"

    def run(out):
        chroma = ChromaSettings(model="test:luma-ramp", render_size=128, max_chunk_frames=12, overlap_frames=2,
                                keyframes=str(kf))
        return run_colorize_film(str(film_mp4), str(out), chroma, EncodeSettings(), ExecutionSettings(workers=2),
                                 str(store))

    first = run(tmp_path / "a.mp4")
    means = mean_ab_by_frame(tmp_path / "a.mp4")
    red, blue = ab_of_rgb(RED), ab_of_rgb(BLUE)
    s0, s1, s2 = means[: CUTS[0]], means[CUTS[0] : CUTS[1]], means[CUTS[1] :]
    # each scene takes its own keyframe's colour, to the last frame; nothing leaks across the cut
    assert np.abs(np.nanmedian(s0, 0) - red).max() < 8, np.nanmedian(s0, 0)
    assert np.abs(np.nanmedian(s1, 0) - blue).max() < 8, np.nanmedian(s1, 0)
    assert np.abs(s0[-3:].mean(0) - red).max() < 12 and np.abs(s1[:3].mean(0) - blue).max() < 12
    # scene 2 has no keyframe: the test model's own colours (it cannot follow a palette, so the
    # job turns the palette lead off and scene 2 depends on no keyframe)
    assert np.linalg.norm(np.nanmedian(s2, 0) - red) > 15 and np.linalg.norm(np.nanmedian(s2, 0) - blue) > 15

    run_dir = store / "runs" / first["run_id"]
    assert (run_dir / "keyframes" / "000004.npz").is_file() and (run_dir / "keyframes" / "000040.npz").is_file()
    plan = json.loads((run_dir / "plan.json").read_text())
    scene_of = {c["index"]: c["scene"] for c in plan["chunks"]}

    # a new colour for scene 1's keyframe: the same run, only scene 1's chunks are colorized again
    write_image_rgb(kf / "40.png", flat(GREEN))
    second = run(tmp_path / "b.mp4")
    assert second["run_id"] == first["run_id"]
    record = json.loads((run_dir / "run.json").read_text())
    redone = set(record["invocations"][-1]["chunks_colorized"])
    assert redone == {i for i, s in scene_of.items() if s == 1}
    assert set(record["invocations"][-1]["chunks_reused"]) == {i for i, s in scene_of.items() if s != 1}
    means_b = mean_ab_by_frame(tmp_path / "b.mp4")
    assert np.abs(np.nanmedian(means_b[CUTS[0] : CUTS[1]], 0) - ab_of_rgb(GREEN)).max() < 8
    assert np.allclose(means_b[: CUTS[0]], s0, atol=1.0) and np.allclose(means_b[CUTS[1] :], s2, atol=1.0)
