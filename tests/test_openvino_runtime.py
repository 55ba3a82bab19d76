"""The OpenVINO runtime gives the torch generator's numbers (fp32), stays close in bf16, and
exports its networks once per weights file."""

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

from vidcolor.models import openvino_runtime  # noqa: E402
from vidcolor.models.gan_colorizer import load_gan_colorizer  # noqa: E402


def _luma(n=11, h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 3) * 100 for _ in range(n)])


def _colorizer(monkeypatch, runtime, precision, int8="off"):
    monkeypatch.setenv("VIDCOLOR_RUNTIME", runtime)
    monkeypatch.setenv("VIDCOLOR_PRECISION", precision)
    monkeypatch.setenv("VIDCOLOR_INT8", int8)
    return load_gan_colorizer(None, "cpu")


@pytest.fixture(scope="module")
def reference():
    """The torch generator in fp32 on a sequence, with and without a logit bias."""
    mp = pytest.MonkeyPatch()
    try:
        torch_gan = _colorizer(mp, "torch", "fp32")
    finally:
        mp.undo()
    assert torch_gan.openvino is None and torch_gan.runtime == "torch fp32"
    L = _luma()
    bias = torch.from_numpy(np.random.default_rng(1).normal(0, 1.5, torch_gan.generator.bin_centres.shape[0])).float()
    out = {"L": L, "bias": bias, "seq": np.concatenate([ab for _, ab in torch_gan.predict_sequence(L, 4)]),
           "one": torch_gan.predict_ab(L[:5])}
    torch_gan.logit_bias = bias
    out["biased"] = np.concatenate([ab for _, ab in torch_gan.predict_sequence(L, 4)])
    torch_gan.set_temporal_attention(False)
    torch_gan.logit_bias = None
    out["no_temporal"] = np.concatenate([ab for _, ab in torch_gan.predict_sequence(L, 4)])
    return out


def test_openvino_fp32_gives_the_torch_numbers(monkeypatch, tmp_path, reference):
    monkeypatch.setenv("VIDCOLOR_CACHE_DIR", str(tmp_path))
    gan = _colorizer(monkeypatch, "openvino", "fp32")
    assert gan.runtime == "openvino fp32"
    L = reference["L"]
    seq = np.concatenate([ab for _, ab in gan.predict_sequence(L, 4)])
    np.testing.assert_allclose(seq, reference["seq"], atol=2e-3)
    np.testing.assert_allclose(gan.predict_ab(L[:5]), reference["one"], atol=2e-3)
    gan.logit_bias = reference["bias"]  # a reference palette's prior reaches the OpenVINO decoding
    biased = np.concatenate([ab for _, ab in gan.predict_sequence(L, 4)])
    np.testing.assert_allclose(biased, reference["biased"], atol=2e-3)
    assert np.abs(biased - seq).mean() > 1
    gan.logit_bias = None
    gan.set_temporal_attention(False)  # a radius the exported block was not made for: torch's block
    no_temporal = np.concatenate([ab for _, ab in gan.predict_sequence(L, 4)])
    np.testing.assert_allclose(no_temporal, reference["no_temporal"], atol=2e-3)
    assert np.abs(no_temporal - seq).max() > 0.1


def test_openvino_bf16_stays_close_to_fp32(monkeypatch, tmp_path, reference):
    from vidcolor.models.precision import native_bf16

    monkeypatch.setenv("VIDCOLOR_CACHE_DIR", str(tmp_path))
    gan = _colorizer(monkeypatch, "openvino", "bf16")
    assert gan.runtime == "openvino bf16"
    seq = np.concatenate([ab for _, ab in gan.predict_sequence(reference["L"], 4)])
    diff = np.abs(seq - reference["seq"])
    if native_bf16("cpu"):  # emulated bf16 elsewhere rounds differently; the bound is for real hardware
        assert diff.mean() < 2.3  # under one just-noticeable colour difference (Delta E 2.3)
    assert diff.max() > 0  # it really ran in bf16
    gan.bf16 = False  # switching precision recompiles
    assert gan.runtime == "openvino fp32"
    np.testing.assert_allclose(np.concatenate([ab for _, ab in gan.predict_sequence(reference["L"], 4)]),
                               reference["seq"], atol=2e-3)


def test_networks_are_exported_once_and_a_broken_cache_is_replaced(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDCOLOR_CACHE_DIR", str(tmp_path))
    gan = _colorizer(monkeypatch, "openvino", "fp32")
    files = sorted((tmp_path / "openvino").glob("*/*.onnx"))
    assert [f.name for f in files] == sorted(f"{n}.onnx" for n in openvino_runtime.NETWORKS)
    assert gan.identity in files[0].parent.name
    stamps = [f.stat().st_mtime_ns for f in files]
    _colorizer(monkeypatch, "openvino", "fp32")
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read from the cache, not exported again
    files[0].unlink()  # a cache left half there (a copy cut short) is exported afresh
    again = _colorizer(monkeypatch, "openvino", "fp32")
    assert all(f.exists() for f in files)
    assert again.predict_ab(_luma(2)).shape == (2, 64, 96, 2)
    assert not list((tmp_path / "openvino").glob(".export-*"))  # no temporary folder left behind


def test_runtime_choice(monkeypatch):
    assert _colorizer(monkeypatch, "torch", "fp32").openvino is None
    monkeypatch.setenv("VIDCOLOR_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="VIDCOLOR_RUNTIME"):
        load_gan_colorizer(None, "cpu")


def test_an_unwritable_cache_exports_for_the_process_alone(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # the cache root is a file: nothing can be written under it
    monkeypatch.setenv("VIDCOLOR_CACHE_DIR", str(blocker))
    gan = _colorizer(monkeypatch, "auto", "fp32")
    assert gan.runtime == "openvino fp32"
    assert gan.predict_ab(_luma(2)).shape == (2, 64, 96, 2)


def test_a_preloaded_malloc_leaves_the_network_to_torch(monkeypatch):
    """OpenVINO aborts the process under a preloaded tcmalloc/jemalloc: torch runs it instead, and
    asking for OpenVINO explicitly is a clear error rather than an abort."""
    from vidcolor.executor.ray_runtime import preload_tcmalloc

    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")  # not loaded here
    assert _colorizer(monkeypatch, "auto", "fp32").runtime == "torch fp32"
    monkeypatch.setenv("VIDCOLOR_RUNTIME", "openvino")
    with pytest.raises(RuntimeError, match="LD_PRELOAD"):
        load_gan_colorizer(None, "cpu")
    monkeypatch.delenv("LD_PRELOAD")
    monkeypatch.setenv("VIDCOLOR_RUNTIME", "auto")
    preload_tcmalloc()  # local Ray's workers: no tcmalloc where OpenVINO runs the network
    assert "LD_PRELOAD" not in __import__("os").environ


def _fake_quantize_count(model) -> int:
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def test_int8_head_decoder_stays_close_to_bf16(monkeypatch, tmp_path, reference):
    """The shipped quantisers make the head decoder int8 in bf16 mode; its chroma stays within a
    fraction of a just-noticeable difference of bf16's, and VIDCOLOR_INT8=off turns it off."""
    from vidcolor.models.int8_head import quantisers_path
    from vidcolor.models.precision import native_bf16

    monkeypatch.setenv("VIDCOLOR_CACHE_DIR", str(tmp_path))
    gan = _colorizer(monkeypatch, "openvino", "bf16", int8="auto")
    assert quantisers_path(gan.path).is_file()
    assert gan.runtime == "openvino bf16, int8 head"
    int8 = np.concatenate([ab for _, ab in gan.predict_sequence(reference["L"], 4)])
    bf16 = np.concatenate([ab for _, ab in _colorizer(monkeypatch, "openvino", "bf16").predict_sequence(reference["L"], 4)])
    diff = np.abs(int8 - bf16)
    assert diff.max() > 0  # the head really ran quantised
    if native_bf16("cpu"):
        assert diff.mean() < 1.0
    assert _colorizer(monkeypatch, "openvino", "fp32", int8="auto").runtime == "openvino fp32"  # fp32 stays exact
    monkeypatch.setenv("VIDCOLOR_INT8", "on")  # a misspelt setting, whatever the precision
    with pytest.raises(ValueError, match="VIDCOLOR_INT8"):
        load_gan_colorizer(None, "cpu")


def test_int8_quantisers_round_trip_and_refuse_what_does_not_fit(monkeypatch, tmp_path):
    import openvino as ov
    from safetensors import safe_open

    from vidcolor.models.int8_head import apply_quantisers, quantisers_path, save_quantisers

    monkeypatch.setenv("VIDCOLOR_CACHE_DIR", str(tmp_path))
    gan = _colorizer(monkeypatch, "openvino", "fp32")
    shipped = quantisers_path(gan.path)
    head = sorted((tmp_path / "openvino").glob("*/head_logits.onnx"))[0]
    core = ov.Core()
    model = core.read_model(str(head))
    n = apply_quantisers(model, shipped, gan.identity)
    assert n == _fake_quantize_count(model) > 10
    again = tmp_path / "again.safetensors"
    assert save_quantisers(model, again, gan.identity) == n  # what was put in is what is read back
    with safe_open(str(shipped), "np") as a, safe_open(str(again), "np") as b:
        assert a.metadata() == b.metadata()
        assert sorted(a.keys()) == sorted(b.keys())
        for key in a.keys():
            np.testing.assert_array_equal(a.get_tensor(key), b.get_tensor(key))

    fresh = core.read_model(str(head))
    with pytest.raises(ValueError, match="made for weights"):
        apply_quantisers(fresh, shipped, "vidcolor-gan-other-weights")
    renamed = core.read_model(str(head))
    next(op for op in renamed.get_ops() if op.get_type_name() == "Convolution").set_friendly_name("elsewhere")
    with pytest.raises(ValueError, match="has no node"):
        apply_quantisers(renamed, shipped, gan.identity)
    assert _fake_quantize_count(fresh) == _fake_quantize_count(renamed) == 0  # a refusal changes nothing
