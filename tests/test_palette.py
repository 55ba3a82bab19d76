"""Reference palettes (``--reference``): the histogram, its text form, how the GAN follows it, and
how it travels through a run (settings, run id, Ray actors) and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.media_helpers import mean_ab_per_frame
from vidcolor.color import rgb_to_lab
from vidcolor.colorizers import load_colorizer
from vidcolor.palette import Palette, palette_from_ab, palette_from_rgb
from vidcolor.job import make_run_id
from vidcolor.settings import ChromaSettings

BLUE = (40, 90, 200)
ORANGE = (230, 140, 30)


def solid(rgb, h=48, w=80) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (h, w, 3)).copy()


def write_png(path, rgb) -> None:
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_histogram_cells_weights_and_text_round_trip():
    ab = np.zeros((10, 10, 2), np.float32)
    ab[:5] = (23.0, -47.0)  # nearest cell (20, -50)
    ab[5:] = (-4.9, 5.1)  # nearest cell (0, 10)
    p = palette_from_ab(ab)
    assert p.cells == ((0, 10, 0.5), (20, -50, 0.5))
    assert Palette.parse(p.to_text()) == p
    assert p.to_text() == "[[0,10,0.5],[20,-50,0.5]]"
    # beyond the grid: clamped to the outermost cell
    assert palette_from_ab(np.full((4, 2), 140.0, np.float32)).cells == ((110, 110, 1.0),)


def test_palette_of_a_photo_is_its_colour():
    a, b = rgb_to_lab(np.array([[ORANGE]], np.float32) / 255)[0, 0, 1:]
    p = palette_from_rgb(solid(ORANGE, 300, 500))  # resized to 64 px first
    assert len(p.cells) == 1
    ca, cb, w = p.cells[0]
    assert w == 1.0 and abs(ca - a) <= 5 and abs(cb - b) <= 5


@pytest.mark.parametrize("text, problem", [
    ("not json", "not JSON"),
    ("[]", "non-empty list"),
    ("[[5, 0, 1.0]]", "not on the ab grid"),
    ("[[0, 120, 1.0]]", "not on the ab grid"),
    ("[[0, 0, 0.5]]", "sum to 0.5000"),
    ("[[0, 0, 1.5], [10, 0, -0.5]]", "not positive"),
    ("[[0, 0]]", "is not [a, b, weight]"),
])
def test_bad_palette_text_says_what_is_wrong(text, problem):
    with pytest.raises(ValueError) as info:
        Palette.parse(text)
    assert problem in str(info.value)


def test_weights_move_onto_a_models_bins():
    p = Palette(((0, 0, 0.25), (20, -50, 0.75)))
    centres = np.array([[0, 0], [20, -50], [30, 30]], np.float32)
    assert p.weights_at(centres).tolist() == [0.25, 0.75, 0.0]
    # a cell the model has no bin for goes to its nearest bin
    assert p.weights_at(np.array([[0, 0], [20, -40]], np.float32)).tolist() == [0.25, 0.75]


def _texture(n=2, h=64, w=96) -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w]
    base = 50 + 25 * np.sin(x / 7.0) * np.cos(y / 9.0)
    return np.stack([base + rng.normal(0, 4, (h, w)) for _ in range(n)]).astype(np.float32).clip(0, 100)


def test_gan_leans_towards_the_reference_colours():
    c = load_colorizer("default", device="cpu")
    L = _texture()
    plain = c.predict_ab(L)
    c.set_palette(palette_from_rgb(solid(BLUE)), 1.0)
    blue = c.predict_ab(L)
    c.set_palette(palette_from_rgb(solid(ORANGE)), 1.0)
    orange = c.predict_ab(L)
    # Lab b: blue < 0 < orange; the shift is large, not rounding
    assert blue[..., 1].mean() < plain[..., 1].mean() - 5
    assert orange[..., 1].mean() > plain[..., 1].mean() + 5
    assert orange[..., 0].mean() > blue[..., 0].mean()
    # a stronger lean moves further
    c.set_palette(palette_from_rgb(solid(BLUE)), 2.0)
    assert c.predict_ab(L)[..., 1].mean() < blue[..., 1].mean()
    # strength 0 and None give back exactly the plain prediction
    c.set_palette(palette_from_rgb(solid(BLUE)), 0.0)
    assert np.array_equal(c.predict_ab(L), plain)
    c.set_palette(None)
    assert np.array_equal(c.predict_ab(L), plain)
    # load_colorizer takes the palette's text
    c2 = load_colorizer("default", device="cpu", palette=palette_from_rgb(solid(BLUE)).to_text())
    assert np.array_equal(c2.predict_ab(L), blue)


def test_models_without_colour_distribution_refuse_a_palette():
    c = load_colorizer("test:luma-ramp")
    c.set_palette(None)  # clearing is always fine
    with pytest.raises(ValueError, match="test:luma-ramp: this model cannot follow a reference palette"):
        c.set_palette(Palette(((10, 10, 1.0),)))


def test_palette_is_part_of_the_run_id_only_when_used():
    model = "vidcolor-gan-mnv2-0123456789ab"
    plain = ChromaSettings()
    key = plain.key(model)
    assert "palette" not in key and "palette_strength" not in key  # runs from before palettes resume
    blue = palette_from_rgb(solid(BLUE)).to_text()
    orange = palette_from_rgb(solid(ORANGE)).to_text()
    ids = {make_run_id("fp", s.key(model)) for s in (
        plain, ChromaSettings(palette=blue), ChromaSettings(palette=orange), ChromaSettings(palette=blue, palette_strength=2.0))}
    assert len(ids) == 4
    assert make_run_id("fp", ChromaSettings(palette=blue, palette_strength=0.0).key(model)) == make_run_id("fp", key)
    assert make_run_id("fp", ChromaSettings(palette=blue).key(model)) == make_run_id("fp", ChromaSettings(palette=blue).key(model))


def test_image_cli_reference(tmp_path):
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    grey = (np.repeat(_texture(1)[0][..., None], 3, -1) * 2.55 + rng.normal(0, 2, (64, 96, 3))).clip(0, 255).astype(np.uint8)
    write_png(photo, grey)
    write_png(tmp_path / "blue.png", solid(BLUE))
    write_png(tmp_path / "grey.png", solid((128, 128, 128)))
    plain, leaning = tmp_path / "plain.png", tmp_path / "blue-out.png"
    assert run_cli(["image", photo, "-o", plain]).returncode == 0
    r = run_cli(["image", photo, "-o", leaning, "--reference", tmp_path / "blue.png"])
    assert r.returncode == 0, r.stderr
    import cv2

    def mean_b(p):
        return rgb_to_lab(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255)[..., 2].mean()

    assert mean_b(leaning) < mean_b(plain) - 3
    for args, message in [
        (["--reference", tmp_path / "missing.png"], f"--reference: {tmp_path / 'missing.png'}: no such file"),
        (["--reference", photo.with_suffix(".txt")], "no such file"),
        (["--reference", tmp_path / "grey.png"], "the reference has no colour (it is grey)"),
        (["--reference", tmp_path / "blue.png", "--reference-strength", "7"], "--reference-strength: 7.0 is outside 0-3"),
        (["--reference", tmp_path / "blue.png", "--model", "test:luma-ramp"], "this model cannot follow a reference palette"),
    ]:
        out = tmp_path / "never.png"
        r = run_cli(["image", photo, "-o", out, *args])
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vidcolor: error: ") and message in lines[0], (args, r.stderr)
        assert not out.exists()


def test_colorize_cli_refuses_a_reference_the_model_cannot_follow(film_mp4, tmp_path):
    write_png(tmp_path / "blue.png", solid(BLUE))
    out = tmp_path / "out.mp4"
    r = run_cli(["colorize", film_mp4, "-o", out, "--store", tmp_path / "store", "--model", "test:luma-ramp",
                 "--reference", tmp_path / "blue.png"], timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "vidcolor: error: --reference: test:luma-ramp: this model cannot follow a reference palette"
    assert not out.exists() and not (tmp_path / "store").exists()


def test_film_follows_the_reference_through_the_actors(pipeline, film_mp4, tmp_path):
    blue = palette_from_rgb(solid(BLUE)).to_text()
    kw = dict(model="default", codec="ffv1", render_size=64, max_chunk_frames=48, workers=1)
    plain = pipeline(film_mp4, tmp_path / "plain.mkv", tmp_path / "store", **kw)
    leaning = pipeline(film_mp4, tmp_path / "blue.mkv", tmp_path / "store", palette=blue, **kw)
    assert plain["run_id"] != leaning["run_id"]
    # run.json says which palette made the run
    import json

    run = json.loads((tmp_path / "store" / "runs" / leaning["run_id"] / "run.json").read_text())
    assert run["invocations"][-1]["chroma"]["palette"] == blue
    run = json.loads((tmp_path / "store" / "runs" / plain["run_id"] / "run.json").read_text())
    assert "palette" not in run["invocations"][-1]["chroma"]
    ab_plain, ab_blue = mean_ab_per_frame(tmp_path / "plain.mkv"), mean_ab_per_frame(tmp_path / "blue.mkv")
    assert len(ab_plain) == len(ab_blue) == plain["frames"]
    # every frame of the film is bluer (lower Lab b) than without the reference
    assert (ab_blue[:, 1] < ab_plain[:, 1]).all(), (ab_blue[:, 1] - ab_plain[:, 1]).max()


def test_reference_frame_brings_real_footage_closer_to_its_colours(shared_data):
    """cockatoo.mp4 (colour footage): with its first frame as the reference, later frames come out
    closer to the originals than without one (benchmarks/reference_palette.py measures the whole clip)."""
    import av

    from vidcolor.evaluation.metrics import psnr
    from vidcolor.models.gan_colorizer import colorize_rgb_image

    with av.open(str(shared_data / "videos" / "cockatoo.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i % 60 == 0]
    reference, later = frames[0], frames[1:]
    c = load_colorizer("default", device="cpu")
    plain = [psnr(colorize_rgb_image(c, f), f) for f in later]
    c.set_palette(palette_from_rgb(reference))
    leaning = [psnr(colorize_rgb_image(c, f), f) for f in later]
    assert len(later) == 4
    assert all(b > a for a, b in zip(plain, leaning)), (plain, leaning)
    assert np.mean(leaning) - np.mean(plain) > 1.0, (plain, leaning)
