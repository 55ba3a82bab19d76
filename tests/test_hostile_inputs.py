"""Hostile input names and contents: a file is opened by its exact path, never as a protocol or an
option, and the fingerprint covers the bytes that are decoded."""

from __future__ import annotations

import os
import shutil

import pytest
from media_helpers import luma_frame_hashes

from vidcolor.job import fingerprint_file
from vidcolor.media.luma import iter_luma
from vidcolor.media.probe import probe_video


def _film(path, frames, size):
    from vidcolor.media.synth import make_test_film

    make_test_film(path, [frames], size=size, audio=False, subtitles=False, title=None)


@pytest.fixture
def lookalikes(tmp_path, monkeypatch):
    """In the working folder: ``b.mp4``, a different film named ``file:b.mp4`` beside it, and
    ``-x.mp4``: names ffmpeg would read as a protocol and as an option."""
    monkeypatch.chdir(tmp_path)
    _film(tmp_path / "b.mp4", 10, (96, 64))
    _film(tmp_path / "file:b.mp4", 14, (128, 96))
    shutil.copy(tmp_path / "file:b.mp4", tmp_path / "-x.mp4")
    return tmp_path


def test_probe_and_decode_open_the_named_file(lookalikes):
    a, b = probe_video("b.mp4"), probe_video("file:b.mp4")
    assert (a.width, a.frame_count_header) == (96, 10)
    assert (b.width, b.frame_count_header) == (128, 14)
    assert [f.y.shape for f in iter_luma("file:b.mp4")] == [(96, 128)] * 14
    assert len(list(iter_luma("./-x.mp4"))) == 14 and probe_video("./-x.mp4").width == 128
    assert fingerprint_file("file:b.mp4") != fingerprint_file("b.mp4")
    assert fingerprint_file("file:b.mp4") == fingerprint_file("-x.mp4")  # same bytes


def test_sampled_fingerprint_covers_mtime_and_stream_summary(tmp_path):
    from dataclasses import replace

    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(300 << 20)  # sparse: the sampled path
    from test_run_state import make_plan

    vi = make_plan().video
    one = fingerprint_file(big, vi)
    assert fingerprint_file(big, replace(vi, path="elsewhere.mp4")) == one  # where it lies does not count
    assert fingerprint_file(big, replace(vi, frame_count_header=99)) != one
    os.utime(big, ns=(1, 1))
    assert fingerprint_file(big, vi) != one


@pytest.mark.slow
def test_lookalike_names_each_colorize_their_own_frames(lookalikes, pipeline):
    """Relative names straight from a user: each run decodes, fingerprints and outputs its own
    film (lossless output luma equals the named file's luma, frame for frame)."""
    store = lookalikes / "store"
    runs = {}
    for name, out in [("file:b.mp4", "file:o.mkv"), ("b.mp4", "o.mkv"), ("./-x.mp4", "./-o.mkv")]:
        runs[name] = pipeline(name, out, store, codec="ffv1", max_chunk_frames=8, overlap_frames=2)
        assert luma_frame_hashes(lookalikes / out) == luma_frame_hashes(lookalikes / name), name
    assert runs["file:b.mp4"]["run_id"] != runs["b.mp4"]["run_id"]
    assert runs["file:b.mp4"]["run_id"] == runs["./-x.mp4"]["run_id"]  # same bytes, same run
    assert runs["file:b.mp4"]["frames"] == 14 and runs["b.mp4"]["frames"] == 10
    assert sorted(p.name for p in lookalikes.iterdir() if p.name.startswith(".")) == []
