"""Bad input: one clear line naming the file and the problem, non-zero exit, no output file, the
source untouched. All through the real CLI."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
from conftest import run_cli
from media_helpers import make_rotated_clip


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(args, output, *needles) -> str:
    """Run ``vidcolor colorize ARGS -o OUTPUT``: it must fail with one line holding every needle."""
    # the default model comes first so that a --model in ARGS overrides it (the last one wins)
    result = run_cli(["colorize", "--model", "test:luma-ramp", *map(str, args), "-o", str(output)], timeout=120)
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("vidcolor: error: ")
    for needle in needles:
        assert needle in line, line
    return line


def _expect_error(args, output, *needles):
    line = _one_error_line(args, output, *needles)
    assert not output.exists()
    assert [p for p in output.parent.iterdir() if p.name.startswith("." + output.name)] == []
    return line


def test_missing_path(tmp_path):
    _expect_error([tmp_path / "nope.mp4"], tmp_path / "o.mp4", "nope.mp4", "no such file")


def test_directory(tmp_path):
    d = tmp_path / "films"
    d.mkdir()
    _expect_error([d], tmp_path / "o.mp4", "films", "is a directory")


def test_text_file(tmp_path):
    f = tmp_path / "notes.mp4"
    f.write_text("this is not a film\n" * 50)
    before = _sha(f)
    _expect_error([f], tmp_path / "o.mp4", "notes.mp4", "not a video file")
    assert _sha(f) == before


def test_empty_file(tmp_path):
    f = tmp_path / "empty.mp4"
    f.touch()
    _expect_error([f], tmp_path / "o.mp4", "empty.mp4", "empty")


def test_audio_only_file(tmp_path):
    f = tmp_path / "sound.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(f)], check=True)
    _expect_error([f], tmp_path / "o.mp4", "sound.m4a", "no video stream")


def test_truncated_video(film_mp4, tmp_path):
    f = tmp_path / "cut.mp4"
    data = film_mp4.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    before = _sha(f)
    _expect_error([f], tmp_path / "o.mp4", "cut.mp4", "truncated")
    assert _sha(f) == before


def test_truncated_video_with_index_up_front(tmp_path):
    """faststart mp4: the header survives, the frames do not; found during the decode pass."""
    from vidcolor.media.synth import make_test_film

    full = tmp_path / "full.mp4"
    make_test_film(full, [60], size=(160, 120), audio=False, subtitles=False, extra_args=["-movflags", "+faststart"])
    f = tmp_path / "cut.mp4"
    f.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    _expect_error([f, "--store", tmp_path / "store"], tmp_path / "o.mp4", "cut.mp4", "truncated")


def test_output_equal_to_input(film_mp4, tmp_path):
    before = _sha(film_mp4)
    _one_error_line([film_mp4], film_mp4, "output is the input", film_mp4.name)
    assert _sha(film_mp4) == before


def test_missing_s3_bucket(s3_server, film_mp4, tmp_path):
    line = _expect_error(["s3://no-such-bucket/film.mp4"], tmp_path / "o.mp4", "s3://no-such-bucket/film.mp4", "does not exist")
    assert "testing" not in line  # credentials never printed
    _one_error_line([film_mp4], "s3://no-such-bucket/out.mp4", "no-such-bucket", "does not exist")


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--codec", "ffv1"], "codec ffv1 cannot be stored in .mp4"),
        (["--overlap-frames", "20", "--max-chunk-frames", "30"], "--overlap-frames"),
        (["--codec", "vp9"], "unknown codec"),
    ],
)
def test_bad_settings(film_mp4, tmp_path, extra, needle):
    _expect_error([film_mp4, *extra], tmp_path / "o.mp4", needle)


def test_output_folder_missing(film_mp4, tmp_path):
    _one_error_line([film_mp4], tmp_path / "no" / "o.mp4", "does not exist")


@pytest.mark.parametrize("kind", ["missing", "not-safetensors", "unknown-test"])
def test_bad_model_is_refused_before_anything_starts(film_mp4, tmp_path, kind):
    """A bad --model is one line naming it, and nothing is started or written: no run state in
    the store (the check runs before Ray and Prefect), no output."""
    spec = {"missing": str(tmp_path / "nope.safetensors"), "unknown-test": "test:nope"}.get(kind)
    needle = {"missing": "no such weights file", "unknown-test": "unknown test colorizer"}.get(kind)
    if kind == "not-safetensors":
        fake = tmp_path / "weights.safetensors"
        fake.write_text("not weights\n" * 20)
        spec, needle = str(fake), "not a readable safetensors file"
    store = tmp_path / "store"
    line = _expect_error([film_mp4, "--store", store, "--model", spec], tmp_path / "o.mp4", "--model", needle)
    assert spec in line
    assert not store.exists()


def test_rotated_input_into_matroska_is_refused(tmp_path):
    """Matroska (as ffmpeg writes it) cannot carry a display matrix: refused up front, not a
    sideways film. The message names the output and the containers that work."""
    src = tmp_path / "phone.mp4"
    make_rotated_clip(src, 90, "160x96", 12)
    before = _sha(src)
    store = tmp_path / "store"
    line = _expect_error([src, "--codec", "ffv1", "--store", store], tmp_path / "o.mkv", "o.mkv", "rotated by 90 degrees", ".mp4 or .mov")
    assert "cannot record" in line
    assert not store.exists()
    assert _sha(src) == before
