"""The PyTorch MobileNetV2 agrees with the TFLite runtime (needs ../shared/data and ai-edge-litert)."""

from __future__ import annotations

import pytest


def test_top1_agreement_with_tflite_runtime(shared_data):
    pytest.importorskip("ai_edge_litert", reason="needs the optional extra 'convert' (ai-edge-litert)")
    from vidcolor.models.convert_tflite import check

    res = check(shared_data / "backbones" / "mobilenet_v2_1.0_224_quant.tflite", shared_data / "images" / "val")
    assert res["images"] == 95
    assert res["agreement"] >= 0.95, res["agreement"]


def test_conversion_reproduces_committed_weights(shared_data):
    pytest.importorskip("ai_edge_litert", reason="needs the optional extra 'convert' (ai-edge-litert)")
    import numpy as np
    from safetensors.numpy import load_file

    from vidcolor.models.convert_tflite import convert
    from vidcolor.models.mobilenet_v2 import WEIGHTS_PATH

    fresh = convert(shared_data / "backbones" / "mobilenet_v2_1.0_224_quant.tflite")
    committed = load_file(str(WEIGHTS_PATH))
    assert set(fresh) == set(committed)
    for k in fresh:
        np.testing.assert_array_equal(fresh[k], committed[k])
