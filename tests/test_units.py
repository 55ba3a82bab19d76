"""Fast unit tests of the pieces under the pipeline: chunk planning, blending, colour math,
stores, fingerprints."""

from __future__ import annotations

import numpy as np
import pytest

from vidcolor.color import chroma_from_lab, lab_to_rgb, luma_to_lightness, rgb_to_lab, ycbcr_to_rgb
from vidcolor.job import fingerprint_file, make_run_id
from vidcolor.plan import chunks_for_scenes, frame_weights, split_scene
from vidcolor.render import render_size
from vidcolor.state import RunLayout, chunk_is_done, load_npy_mapped, pack_array, unpack_array, write_chunk_done
from vidcolor.store import open_store


@pytest.mark.parametrize("length,cap", [(1, 10), (10, 10), (11, 10), (20, 10), (21, 10), (57, 10), (240, 24), (1000, 240)])
def test_split_scene_covers_scene_with_capped_cores(length, cap):
    cores = split_scene(100, 100 + length, cap)
    assert cores[0][0] == 100 and cores[-1][1] == 100 + length
    assert all(b == c for (_, b), (c, _) in zip(cores, cores[1:]))
    assert all(0 < e - s <= cap for s, e in cores)
    # no sliver: every core is at least half a cap unless the scene itself is shorter
    assert all(e - s >= min(length, cap // 2) for s, e in cores)


def test_chunks_never_span_cuts_and_overlap_inside_scenes():
    chunks = chunks_for_scenes([0, 50, 53, 200], 260, max_frames=20, overlap=4)
    bounds = [0, 50, 53, 200, 260]
    for c in chunks:
        a, b = bounds[c.scene], bounds[c.scene + 1]
        assert a <= c.ext_start and c.ext_end <= b
        assert c.ext_start == max(a, c.core_start - 4) and c.ext_end == min(b, c.core_end + 4)
    covered = [f for c in chunks for f in range(c.core_start, c.core_end)]
    assert covered == list(range(260))


def test_blend_weights_ramp_and_sum_to_one():
    k = 4
    chunks = chunks_for_scenes([0, 40], 80, max_frames=20, overlap=k)
    for c in chunks:
        w = frame_weights(chunks, c.index, k)
        total = np.sum([np.array(v) for v in w.values()], axis=0)
        np.testing.assert_allclose(total, 1.0)
        # nothing from another scene
        assert all(chunks[i].scene == c.scene for i in w)
    # around the boundary at 20 the weight of chunk 1 rises by 1/(2K) per frame
    w0, w1 = frame_weights(chunks, 0, k), frame_weights(chunks, 1, k)
    ramp = w0[1][-k:] + w1[1][:k]
    np.testing.assert_allclose(np.diff(ramp), 1 / (2 * k))
    # across the cut at 40: chunk 2 takes no weight from chunk 1
    assert set(frame_weights(chunks, 2, k)) == {2, 3}


def test_render_size_multiple_and_aspect():
    assert render_size(1920, 1080, 256, 32) == (448, 256)
    assert render_size(432, 320, 256, 32) == (352, 256)
    w, h = render_size(100, 60, 256, 32)  # never upscale much past the source
    assert w % 32 == 0 and h % 32 == 0 and w <= 128 and h <= 64


def test_lab_round_trip_and_grey_has_no_chroma():
    rgb = np.random.default_rng(0).random((64, 3)).astype(np.float32)
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4)
    grey = rgb_to_lab(np.full((3,), 0.5, np.float32))
    assert abs(grey[1]) < 1e-3 and abs(grey[2]) < 1e-3


def test_chroma_from_lab_is_neutral_for_zero_ab_and_round_trips():
    y = np.array([[16, 60, 128, 200, 235]], np.uint8)
    lightness = luma_to_lightness(y)
    cb, cr = chroma_from_lab(lightness, np.zeros(y.shape + (2,), np.float32))
    assert np.all(np.abs(cb.astype(int) - 128) <= 1) and np.all(np.abs(cr.astype(int) - 128) <= 1)
    ab = np.full(y.shape + (2,), [20.0, -15.0], np.float32)
    y_mid = np.full((1, 1), 128, np.uint8)
    cb, cr = chroma_from_lab(luma_to_lightness(y_mid), ab[:, :1], "bt601")
    back = rgb_to_lab(ycbcr_to_rgb(y_mid, cb, cr, "bt601"))
    np.testing.assert_allclose(back[0, 0, 1:], [20.0, -15.0], atol=2.0)


def test_local_store_atomic_and_listing(tmp_path):
    store = open_store(str(tmp_path / "s"))
    store.put_bytes("a/b/c.bin", b"123")
    store.put_json("a/x.json", {"k": 1})
    assert store.get_bytes("a/b/c.bin") == b"123"
    assert store.list("a") == ["a/b/c.bin", "a/x.json"]
    with pytest.raises(KeyError):
        store.get_bytes("missing")
    with pytest.raises(ValueError):
        store.put_bytes("../escape", b"x")


def test_s3_store_over_http(s3_server):
    import boto3

    boto3.client("s3").create_bucket(Bucket="unit")
    store = open_store("s3://unit/some/prefix")
    store.put_bytes("k/v.bin", b"hello")
    assert store.exists("k/v.bin") and not store.exists("k/nope")
    assert store.get_bytes("k/v.bin") == b"hello"
    assert store.list("k") == ["k/v.bin"]
    with pytest.raises(KeyError):
        store.get_bytes("k/nope")


def test_s3_responses_cut_short_are_read_again(s3_server, monkeypatch, tmp_path):
    """Responses whose body breaks off after the headers (a reset), for every kind of call: each is
    made again and none returns a partial answer. botocore alone lets GetObject's 404 escape."""
    import boto3
    from s3_fault_proxy import FaultProxy

    from vidcolor.store.s3 import s3_client

    boto3.client("s3").create_bucket(Bucket="cut")
    store = open_store("s3://cut/p")
    keys = [f"k/{i:03d}.bin" for i in range(40)]  # a listing long enough to be cut
    for key in keys:
        store.put_bytes(key, key.encode() * 100)
    try:
        with FaultProxy(s3_server["endpoint"], rate=1.0, kinds=("truncate",), limit=3) as proxy:
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
            s3_client.cache_clear()
            assert store.list("k") == keys
            assert proxy.counts["truncate"] == 3 and proxy.counts["clean"] == 1
            proxy.limit += 3
            with pytest.raises(KeyError):  # GetObject's 404: botocore reads an error's body outside its retries
                store.get_bytes("k/missing")
            proxy.limit += 3
            assert store.get_bytes(keys[7]) == keys[7].encode() * 100
            proxy.limit += 3
            assert store.create_exclusive(keys[0], b"other") is False  # its 412's body is cut too
            proxy.limit += 3
            store.download_file(keys[9], tmp_path / "got")
            assert (tmp_path / "got").read_bytes() == keys[9].encode() * 100
        assert proxy.counts["truncate"] == 15
    finally:
        monkeypatch.undo()
        s3_client.cache_clear()
    assert store.get_bytes(keys[0]) == keys[0].encode() * 100


def test_done_marker_is_trusted_only_when_checksum_matches(tmp_path):
    store = open_store(str(tmp_path / "s"))
    layout = RunLayout("r1")
    data = pack_array(ab=np.zeros((5, 4, 4, 2), np.int8))
    write_chunk_done(store, layout, 0, data, 5, {})
    assert chunk_is_done(store, layout, 0, 5)
    assert not chunk_is_done(store, layout, 0, 6)  # wrong frame count
    store.put_bytes(layout.chunk(0, "chroma.npz"), data[:-10])  # corrupted chroma
    assert not chunk_is_done(store, layout, 0, 5)
    assert not chunk_is_done(store, layout, 1, 5)  # no marker


def test_fingerprint_and_run_id(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"x" * 1000)
    f1 = fingerprint_file(a)
    a.write_bytes(b"x" * 999 + b"y")
    f2 = fingerprint_file(a)
    assert f1 != f2
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(300 << 20)  # sparse: sampled fingerprint path
    g1 = fingerprint_file(big)
    with open(big, "r+b") as f:
        f.seek(150 << 20)
        f.write(b"z" * (8 << 20))  # wider than the gap between sampled blocks
    assert fingerprint_file(big) != g1
    assert make_run_id(f1, {"m": 1}) != make_run_id(f1, {"m": 2})
    assert make_run_id(f1, {"m": 1}) == make_run_id(f1, {"m": 1})


def test_frame_table_is_read_once_per_run_and_process(tmp_path):
    """Every stitch task needs the run's frames.parquet; it is immutable once split wrote it, so it
    is read from the store once (on S3, one download per film, not one per chunk)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vidcolor.state import load_frame_table
    from vidcolor.store.local import LocalFolderStore

    class CountingStore(LocalFolderStore):
        reads = 0

        def get_bytes(self, key):
            self.reads += 1
            return super().get_bytes(key)

    def table_bytes(n):
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({"pts": list(range(n))}), sink)
        return sink.getvalue().to_pybytes()

    store = CountingStore(tmp_path / "store")
    a, b = RunLayout("run-a"), RunLayout("run-b")
    store.put_bytes(a.frames, table_bytes(5))
    store.put_bytes(b.frames, table_bytes(7))
    assert [load_frame_table(store, a).num_rows for _ in range(20)] == [5] * 20
    assert store.reads == 1
    assert load_frame_table(store, b).num_rows == 7 and store.reads == 2  # another run is another table
    other = CountingStore(tmp_path / "other-store")
    other.put_bytes(a.frames, table_bytes(3))
    assert load_frame_table(other, a).num_rows == 3  # same run id in another store: not confused


def test_packed_arrays_come_back_equal_and_writable_in_parallel_threads(tmp_path):
    """unpack_array reads numpy's format itself (headers parsed one thread at a time: CPython 3.11's
    AST counter is shared between threads), so every layout must come back exact."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    arrays = {
        "ab": rng.integers(-128, 128, (7, 9, 11, 2), dtype=np.int8),
        "half": rng.standard_normal((5, 6)).astype(np.float16),
        "fortran": np.asfortranarray(rng.standard_normal((4, 3))),
        "flags": rng.random(13) > 0.5,
        "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 4), np.uint16),
    }
    data = pack_array(**arrays)

    def read_all(_):
        return {name: unpack_array(data, name) for name in arrays}

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read_all, range(64)))
    for got in results:
        for name, want in arrays.items():
            assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
            np.testing.assert_array_equal(got[name], want)
    ab = results[0]["ab"]
    ab[0, 0, 0, 0] = 7  # writable, like np.load's arrays
    assert results[1]["ab"][0, 0, 0, 0] == arrays["ab"][0, 0, 0, 0]
    with pytest.raises(KeyError):
        unpack_array(data, "nope")
    np.save(tmp_path / "m.npy", arrays["ab"])
    mapped = load_npy_mapped(tmp_path / "m.npy")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, arrays["ab"])
