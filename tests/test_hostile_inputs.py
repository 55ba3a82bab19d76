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


# --- what the pipeline cannot carry faithfully: refused with one line, or named in a warning ------

def _ffmpeg(*args):
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5", *map(str, args)],
                   check=True)


@pytest.mark.parametrize("kind, make, codec, needles", [
    ("10bit", ["-frames:v", "4", "-pix_fmt", "yuv420p10le", "-c:v", "ffv1"], "h264",
     ["has 10-bit video (yuv420p10le) and --codec h264 writes 8-bit only", "use --codec hevc or ffv1 or prores"]),
    ("12bit", ["-frames:v", "4", "-pix_fmt", "yuv420p12le", "-c:v", "ffv1"], "ffv1",
     ["has 12-bit video (yuv420p12le)", "carries up to 10 bits", "-pix_fmt yuv420p10le"]),
    ("interlaced", ["-frames:v", "4", "-vf", "hue=s=0", "-c:v", "ffv1", "-field_order", "tt"], "ffv1",
     ["is interlaced (field order tt)", "deinterlace it first", "bwdif"]),
])
def test_unfaithful_inputs_are_refused_with_one_line(tmp_path, kind, make, codec, needles):
    from test_bad_input import _expect_error

    src = tmp_path / f"{kind}.mkv"
    _ffmpeg(*make, src)
    store = tmp_path / "store"
    _expect_error([src, "--codec", codec, "--store", store], tmp_path / "o.mkv", f"{kind}.mkv", *needles)
    assert not store.exists()


@pytest.mark.slow
def test_10bit_film_keeps_its_10_bits(tmp_path, pipeline):
    """A 10-bit film into ffv1: the output is 10-bit, its luma equals the source's sample for
    sample, and its chroma is colour (away from the 10-bit neutral 512)."""
    import av
    import numpy as np
    from media_helpers import probe, video_stream

    src = tmp_path / "deep.mkv"
    _ffmpeg("-frames:v", "20", "-vf", "scale=128:96,hue=s=0,format=yuv420p10le", "-c:v", "ffv1", src)
    out = tmp_path / "out.mkv"
    pipeline(src, out, tmp_path / "store", codec="ffv1", max_chunk_frames=12, overlap_frames=2)
    assert video_stream(probe(out))["pix_fmt"] == "yuv420p10le"
    assert luma_frame_hashes(out) == luma_frame_hashes(src)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        cb = np.frombuffer(frame.planes[1], np.uint16)
    assert np.abs(cb.astype(int) - 512).mean() > 8


def test_extra_video_streams_are_named_in_a_warning(tmp_path, capfd):
    from vidcolor.job import prepare_job
    from vidcolor.settings import ChromaSettings, EncodeSettings

    src = tmp_path / "two.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x24:rate=5", "-frames:v", "4", "-map", "0", "-map", "1", "-c:v", "ffv1", src)
    job = prepare_job(str(src), str(tmp_path / "o.mkv"), ChromaSettings(model="test:luma-ramp"),
                      EncodeSettings(codec="ffv1"), str(tmp_path / "store"))
    assert job.info.extra_video == ("#1 (ffv1 32x24)",)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "vidcolor: warning: " in err and "video stream #1 (ffv1 32x24) is left out" in err


@pytest.mark.slow
def test_full_disk_is_named_and_the_run_resumes_once_space_is_freed(tmp_path):
    """The output folder on a 64 KiB tmpfs (a private mount namespace): one line naming the full
    disk, nothing under the output name; after the tmpfs grows, the same command finishes and
    reuses every colorized chunk."""
    import json
    import subprocess
    import sys

    from vidcolor.media.synth import make_test_film

    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs unprivileged user and mount namespaces (unshare -rm) for a small tmpfs")
    film = tmp_path / "film.mp4"
    make_test_film(film, [30, 20], size=(160, 120))
    (tmp_path / "outdir").mkdir()
    vidcolor = os.path.join(os.path.dirname(sys.executable), "vidcolor")
    cmd = f"{vidcolor} colorize film.mp4 -o outdir/o.mp4 --store store --model test:luma-ramp --render-size 64"
    script = (f"mount -t tmpfs -o size=64k tmpfs outdir || exit 90\n{cmd}\necho rc=$? >&2\nls -A outdir >&2\n"
              f"mount -o remount,size=20m outdir\n{cmd}\necho rc=$? >&2\nls -A outdir >&2\n")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=560, env=env)
    first, second = proc.stderr.split("rc=")[0], proc.stderr.split("rc=")[1]
    errors = [ln for ln in first.splitlines() if ln.startswith("vidcolor: error:")]
    assert errors == ["vidcolor: error: outdir: no space left on device; free space and run again (the run resumes "
                      "where it stopped)"], proc.stderr[-3000:]
    assert second.splitlines()[0] == "1" and second.splitlines()[1:] == [], "something was left in the full folder"
    assert proc.stderr.split("rc=")[2].splitlines() == ["0", "o.mp4"], proc.stderr[-3000:]
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "store").glob("runs/*/run.json")]
    first_inv, second_inv = record["invocations"]
    assert first_inv["status"] == "failed" and "no space left on device" in first_inv["error"]
    assert second_inv["status"] == "succeeded" and second_inv["chunks_colorized"] == []


@pytest.mark.parametrize("name", ["evil.mp4", "evil.m3u8"])
def test_a_playlist_posing_as_a_film_reaches_no_server(tmp_path, name):
    """An HLS playlist that points at a server: refused with one line, and the server hears
    nothing (ffmpeg's own checks and the file-only protocol whitelist both stand in the way)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from vidcolor.errors import BadInputError

    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        evil = tmp_path / name
        evil.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n"
                        f"http://127.0.0.1:{server.server_address[1]}/seg.ts\n#EXT-X-ENDLIST\n")
        with pytest.raises(BadInputError) as e:
            probe_video(evil)
        assert name in str(e.value) and "\n" not in str(e.value)
        with pytest.raises(BadInputError):
            list(iter_luma(str(evil)))
        assert hits == []
    finally:
        server.shutdown()
