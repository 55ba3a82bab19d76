"""Temporal coherence in the product: the model's temporal context (never across a cut) and the
flow-guided chroma stabiliser."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidcolor.colorizer import Colorizer, FrameContext
from vidcolor.errors import BadInputError
from vidcolor.plan import chunks_for_scenes
from vidcolor.job import make_run_id
from vidcolor.settings import ChromaSettings
from vidcolor.stabilize import StabilizerParams, stabilize_ab
from vidcolor.stages.colorize import predict_chunk_ab

H, W = 64, 96


def texture(seed=0, h=H, w=W + 80):
    rng = np.random.default_rng(seed)
    x = cv2.resize(rng.random((h // 4, w // 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    x = cv2.GaussianBlur(x, (0, 0), 1.5)
    return np.clip((x - x.min()) / (x.max() - x.min()) * 180 + 40, 0, 255).astype(np.uint8)


def pan(n, step=2, seed=0):
    tex = texture(seed)
    return np.stack([tex[:, k * step : k * step + W] for k in range(n)])


def ab_of(luma):
    """A 'true' chroma that is a function of the content, so it moves with it."""
    y = luma.astype(np.float32) / 255
    return np.stack([60 * y - 30, 30 - 60 * y], axis=-1)


# --- the model's temporal context -----------------------------------------------------------

class RecordingColorizer(Colorizer):
    identity = "test:recording"
    temporal_context = 2

    def __init__(self):
        self.seen: list[tuple[int, int]] = []

    def predict_ab(self, lightness, context=FrameContext()):
        self.seen.append((context.first_frame, context.first_frame + lightness.shape[0]))
        return np.zeros(lightness.shape + (2,), np.float32)


def test_temporal_context_stays_inside_the_chunk_scene_and_uses_the_overlap():
    scene_starts, total = [0, 30], 75
    chunks = chunks_for_scenes(scene_starts, total, max_frames=12, overlap=4)
    bounds = scene_starts + [total]
    for c in chunks:
        colorizer = RecordingColorizer()
        predict_chunk_ab(colorizer, np.zeros((c.ext_frames, 8, 8), np.uint8), False, c, batch_size=5)
        lo, hi = bounds[c.scene], bounds[c.scene + 1]
        assert all(lo <= a and b <= hi for a, b in colorizer.seen), (c, colorizer.seen)
        assert all(c.ext_start <= a and b <= c.ext_end for a, b in colorizer.seen)
        # the first core frame sees its neighbours before it when the chunk has an overlap there
        first = next(s for s in colorizer.seen if s[0] <= c.core_start < s[1])
        assert first[0] <= max(c.ext_start, c.core_start - 2)
    # the plan itself never lets an extended range cross a cut
    assert all(bounds[c.scene] <= c.ext_start and c.ext_end <= bounds[c.scene + 1] for c in chunks)


def test_temporal_attention_off_is_frame_by_frame():
    recording = RecordingColorizer()
    recording.set_temporal_attention(False)
    list(recording.predict_sequence(np.zeros((12, 8, 8), np.float32), 5))
    assert recording.seen == [(0, 5), (5, 10), (10, 12)]  # no neighbours beyond the batch


@pytest.fixture(scope="module")
def gan():
    from vidcolor.colorizers import load_colorizer

    return load_colorizer("default", device="cpu")


def test_gan_sequence_matches_the_generic_context_loop_and_off_matches_single_frames(gan):
    rng = np.random.default_rng(0)
    L = (cv2.GaussianBlur(rng.random((11, H, W)).astype(np.float32), (0, 0), 2) * 100).astype(np.float32)
    gan.set_temporal_attention(True)
    assert gan.temporal_context == 1
    bf16 = gan.bf16
    gan.bf16 = False  # the same numbers in fp32; bf16's rounding depends on the batch's shape
    try:
        fast = np.concatenate([ab for _, ab in gan.predict_sequence(L, 4)])
        generic = np.concatenate([ab for _, ab in Colorizer.predict_sequence(gan, L, 4)])
        np.testing.assert_allclose(fast, generic, atol=1e-4)  # every frame's encoder ran once, same numbers
        gan.set_temporal_attention(False)
        off = np.concatenate([ab for _, ab in gan.predict_sequence(L, 4)])
        single = np.concatenate([gan.predict_ab(L[k : k + 1]) for k in range(len(L))])
        gan.bf16 = True  # bf16 (the default on CPUs that compute it natively) stays close to fp32
        off_bf16 = np.concatenate([ab for _, ab in gan.predict_sequence(L, 4)])
        assert np.abs(off_bf16 - off).mean() < 2.3  # under one just-noticeable colour difference (Delta E 2.3)
    finally:
        gan.set_temporal_attention(True)
        gan.bf16 = bf16
    np.testing.assert_allclose(off, single, atol=1e-3)
    assert np.abs(off - fast).max() > 0.1  # the neighbours do change the prediction


# --- the stabiliser -------------------------------------------------------------------------

def test_stabiliser_removes_flicker_and_follows_motion():
    luma = pan(16)
    truth = ab_of(luma)
    rng = np.random.default_rng(3)
    flicker = truth + rng.normal(0, 6, size=(16, 1, 1, 2)).astype(np.float32)  # a colour cast per frame
    out = stabilize_ab(luma, flicker)
    inner = (slice(None), slice(8, -8), slice(8, -8))

    def frame_to_frame(ab):
        return np.abs(np.diff(ab[inner].mean(axis=(1, 2)), axis=0)).mean()

    assert frame_to_frame(out) < 0.35 * frame_to_frame(flicker)
    # colours moved with the content: closer to the truth than the flickering input, not smeared
    assert np.abs(out - truth)[inner].mean() < 0.6 * np.abs(flicker - truth)[inner].mean()


def test_stabiliser_keeps_new_content_its_own_colour():
    # a static scene whose right half turns into something else at frame 6 (luma and colour change)
    luma = np.repeat(texture(1)[None, :, :W], 12, axis=0)
    luma[6:, :, W // 2 :] = texture(2)[:, : W // 2] // 3
    ab = np.zeros(luma.shape + (2,), np.float32)
    ab[:6, :, W // 2 :] = [30, -30]
    ab[6:, :, W // 2 :] = [-30, 30]
    out = stabilize_ab(luma, ab)
    core = (slice(8, -8), slice(W // 2 + 8, -8))
    assert np.abs(out[2][core] - [30, -30]).mean() < 3  # nothing of the later colour leaks back
    assert np.abs(out[9][core] - [-30, 30]).mean() < 3  # nor the earlier one forward
    assert np.abs(out[:, 8:-8, 8 : W // 2 - 8]).max() < 1  # the unchanged half stays as it was


def test_stabiliser_leaves_steady_input_and_strength_zero_alone():
    luma = pan(6)
    ab = ab_of(luma)
    assert np.array_equal(stabilize_ab(luma, ab, StabilizerParams(strength=0)), ab)
    const = np.full(luma.shape + (2,), 7.0, np.float32)
    np.testing.assert_allclose(stabilize_ab(luma, const), const, atol=0.05)  # (cv2.remap rounds its weights)
    with pytest.raises(ValueError, match="frames"):
        stabilize_ab(luma[:5], ab)


# --- settings -------------------------------------------------------------------------------

def test_temporal_settings_change_the_run_id_and_are_checked():
    from vidcolor.job import check_settings
    from vidcolor.settings import EncodeSettings

    ids = {make_run_id("fp", s.key("m")) for s in (
        ChromaSettings(), ChromaSettings(stabilize=False), ChromaSettings(temporal_attention=False),
        ChromaSettings(stabilize_strength=0.5))}
    assert len(ids) == 4
    # without the stabiliser its strength is irrelevant
    assert ChromaSettings(stabilize=False, stabilize_strength=0.5).key("m") == ChromaSettings(stabilize=False).key("m")
    assert ChromaSettings(stabilize=False).stabilizer_strength == 0
    with pytest.raises(BadInputError, match="--stabilize-strength"):
        check_settings(ChromaSettings(model="test:luma-ramp", stabilize_strength=1.5), EncodeSettings())


@pytest.mark.parametrize("budget", ["memory", "spill"])
def test_scene_pass_over_chunks_equals_one_pass_over_the_blended_scene(tmp_path, monkeypatch, budget):
    """The pipeline stabilises a scene a chunk at a time after the overlaps are blended
    (vidcolor.stages.scene_stabilize): the result is the one pass over the whole blended scene, so
    a chunk join is smoothed like any other frame, where a pass per chunk leaves a step there. The
    same whether the forward pass is held in memory or spilled to temporary files."""
    from types import SimpleNamespace

    from vidcolor.stages import scene_stabilize

    if budget == "spill":
        monkeypatch.setattr(scene_stabilize, "MEMORY_BUDGET", 20_000)  # under one chunk: all to disk

    from vidcolor.plan import chunks_for_scenes
    from vidcolor.stages.scene_stabilize import stabilize_scene
    from vidcolor.stages.stitch import blended_chroma
    from vidcolor.state import RunLayout, pack_array, unpack_array
    from vidcolor.store import open_store

    n, overlap = 60, 6
    luma = pan(n, step=1)
    chunks = chunks_for_scenes([0], n, 20, overlap)
    assert len(chunks) == 3
    store, layout = open_store(str(tmp_path / "store")), RunLayout("r")
    rng = np.random.default_rng(5)
    for c in chunks:  # each chunk's own prediction: the truth, its own colour cast, per-frame flicker
        raw = ab_of(luma[c.ext_start : c.ext_end]) + rng.normal(0, 4, size=2).astype(np.float32)
        raw = raw + rng.normal(0, 3, size=(c.ext_frames, 1, 1, 2)).astype(np.float32)
        store.put_bytes(layout.chunk(c.index, "chroma.npz"), pack_array(ab=np.rint(raw).astype(np.int8)))
        store.put_bytes(layout.chunk(c.index, "source.npz"), pack_array(luma=luma[c.ext_start : c.ext_end]))
    plan = SimpleNamespace(chunks=tuple(chunks), overlap=overlap)
    spilled = []
    real_save = np.save
    monkeypatch.setattr(np, "save", lambda path, array: (spilled.append(path), real_save(path, array)))
    stabilize_scene(store, layout, plan, [0, 1, 2], StabilizerParams())
    assert bool(spilled) == (budget == "spill")
    got = np.concatenate([unpack_array(store.get_bytes(layout.chunk(i, "stable.npz")), "ab") for i in range(3)])
    blended = np.concatenate([blended_chroma(store, layout, list(chunks), overlap, i) for i in range(3)])
    whole = stabilize_ab(luma, blended)
    assert np.abs(got.astype(np.float32) - whole).max() <= 1.0  # int8 rounding and float16 state only

    def steps(ab):
        return np.linalg.norm(np.diff(ab[:, 8:-8, 8:-8].astype(np.float32).mean(axis=(1, 2)), axis=0), axis=1)

    joins = [c.core_start - 1 for c in chunks[1:]]  # step from the last frame of a core to the next
    inside = np.median(np.delete(steps(got), joins))
    per_chunk = np.concatenate([stabilize_ab(luma[c.core_start : c.core_end], blended[c.core_start : c.core_end])
                                for c in chunks])
    assert steps(got)[joins].max() <= 1.5 * max(inside, 0.05)  # no seam left at the joins
    assert steps(per_chunk)[joins].max() > 1.5 * np.median(np.delete(steps(per_chunk), joins))  # the old way had one


def test_scene_pass_goes_forward_in_order_and_writes_the_last_chunk_first(tmp_path):
    """ScenePass follows the actors: chunks go forward only in film order, the backward pass needs
    them all, and it hands each chunk to its stitch (on_stable) as soon as it is written, last first."""
    from types import SimpleNamespace

    from vidcolor.plan import chunks_for_scenes
    from vidcolor.stages.scene_stabilize import ScenePass
    from vidcolor.state import RunLayout, pack_array
    from vidcolor.store import open_store

    n, overlap = 40, 4
    luma = pan(n, step=1)
    chunks = chunks_for_scenes([0], n, 14, overlap)
    store, layout = open_store(str(tmp_path / "store")), RunLayout("r")
    for c in chunks:
        ab = np.rint(ab_of(luma[c.ext_start : c.ext_end])).astype(np.int8)
        store.put_bytes(layout.chunk(c.index, "chroma.npz"), pack_array(ab=ab))
        store.put_bytes(layout.chunk(c.index, "source.npz"), pack_array(luma=luma[c.ext_start : c.ext_end]))
    plan = SimpleNamespace(chunks=tuple(chunks), overlap=overlap)
    members = [c.index for c in chunks]
    scene = ScenePass(store, layout, plan, members, StabilizerParams())
    with pytest.raises(ValueError, match="out of order"):
        scene.forward(members[1])
    scene.forward(members[0])
    with pytest.raises(ValueError, match="has not gone forward"):
        scene.finish()
    for i in members[1:]:
        assert scene.next_forward == i
        scene.forward(i)
    assert scene.next_forward is None
    written = []
    result = scene.finish(on_stable=lambda i: written.append((i, store.exists(layout.chunk(i, "stable.npz")))))
    assert written == [(i, True) for i in reversed(members)]
    assert result["frames"] == n and result["chunks"] == members
    assert not scene.work.exists()  # its temporary folder is gone
