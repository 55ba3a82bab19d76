"""Convert the Coral ``mobilenet_v2_1.0_224_quant.tflite`` into PyTorch safetensors, and check it.

    python -m vidcolor.models.convert_tflite convert TFLITE [-o OUT.safetensors]
    python -m vidcolor.models.convert_tflite check TFLITE IMAGES_DIR [--weights OUT.safetensors]

Needs the optional extra ``convert`` (``ai-edge-litert``, the TFLite runtime) only here; the rest of
vidcolor reads the safetensors file. Every weight is dequantised, ``scale * (q - zero_point)``
(int32 biases: ``scale * q``). TFLite layouts: conv OHWI -> OIHW; depthwise 1HWC -> C1HW.

The source model is Apache-2.0 licensed, from google-coral/test_data; the converted file carries
that attribution in its safetensors metadata.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

ATTRIBUTION = (
    "MobileNetV2 1.0 224 (uint8 quantised, batch norm folded), converted from "
    "mobilenet_v2_1.0_224_quant.tflite of google-coral/test_data, Apache License 2.0. "
    "Weights dequantised as scale*(q-zero_point) by vidcolor.models.convert_tflite."
)


def _interpreter(tflite_path: str | Path):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise SystemExit("the TFLite runtime is missing: pip install 'vidcolor[convert]' (ai-edge-litert)") from exc
    it = Interpreter(
        model_path=str(tflite_path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    return it


def _layer_name(tensor_name: str) -> str:
    """'MobilenetV2/expanded_conv_3/expand/Conv2D_Fold;...' -> 'blocks.3.expand'."""
    first = tensor_name.split(";")[0]
    if first.startswith("MobilenetV2/Logits/"):
        return "logits"
    m = re.match(r"MobilenetV2/(Conv|Conv_1|expanded_conv(?:_(\d+))?)/(?:(expand|depthwise|project)/)?", first)
    if not m:
        raise ValueError(f"unexpected tflite tensor {tensor_name!r}")
    if m.group(1) == "Conv":
        return "conv0"
    if m.group(1) == "Conv_1":
        return "conv_last"
    return f"blocks.{int(m.group(2) or 0)}.{m.group(3)}"


def _dequantize(it, index: int) -> np.ndarray:
    detail = it._get_tensor_details(index, 0) if hasattr(it, "_get_tensor_details") else None
    q = it.get_tensor(index)
    params = (detail or {}).get("quantization_parameters") if detail else None
    if params is None:
        params = {t["index"]: t for t in it.get_tensor_details()}[index]["quantization_parameters"]
    scales = np.asarray(params["scales"], dtype=np.float64)
    zps = np.asarray(params["zero_points"], dtype=np.float64)
    if scales.size == 0:
        return q.astype(np.float32)
    if scales.size > 1:  # per-channel (not in the Coral uint8 file, kept for the TF2 variant)
        shape = [1] * q.ndim
        shape[params["quantized_dimension"]] = -1
        scales, zps = scales.reshape(shape), zps.reshape(shape)
    return (scales * (q.astype(np.float64) - zps)).astype(np.float32)


def convert(tflite_path: str | Path) -> dict[str, np.ndarray]:
    """State dict (numpy float32) of ``vidcolor.models.mobilenet_v2.MobileNetV2``."""
    it = _interpreter(tflite_path)
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    state: dict[str, np.ndarray] = {}
    for op in it._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        w_idx, b_idx = int(op["inputs"][1]), int(op["inputs"][2])
        layer = _layer_name(names[w_idx])
        w = _dequantize(it, w_idx)
        b = _dequantize(it, b_idx)
        if op["op_name"] == "CONV_2D":
            w = w.transpose(0, 3, 1, 2)  # OHWI -> OIHW
        else:
            w = w.transpose(3, 0, 1, 2)  # 1HWC -> C1HW
        state[f"{layer}.weight"] = np.ascontiguousarray(w)
        state[f"{layer}.bias"] = np.ascontiguousarray(b)
    return state


def save(state: dict[str, np.ndarray], out: str | Path) -> None:
    from safetensors.numpy import save_file

    save_file(state, str(out), metadata={"license": "Apache-2.0", "source": "google-coral/test_data",
                                         "attribution": ATTRIBUTION})


def center_crop_224(path: Path) -> np.ndarray:
    """RGB uint8 224x224: short side resized to 256 (if not already), centre crop."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a readable image")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    s = 256 / min(h, w)
    if abs(s - 1) > 1e-6:
        rgb = cv2.resize(rgb, (max(224, round(w * s)), max(224, round(h * s))), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    y, x = (h - 224) // 2, (w - 224) // 2
    return np.ascontiguousarray(rgb[y:y + 224, x:x + 224])


def check(tflite_path: str | Path, images_dir: str | Path, weights: str | Path | None = None) -> dict:
    """Top-1 agreement of the PyTorch port with the TFLite runtime on every image of a folder."""
    import torch

    from vidcolor.models.mobilenet_v2 import load_mobilenet_v2, preprocess_uint8

    it = _interpreter(tflite_path)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    model = load_mobilenet_v2(weights)
    files = sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    agree, rows = 0, []
    for p in files:
        img = center_crop_224(p)
        it.set_tensor(inp["index"], img[None])
        it.invoke()
        ref = int(np.argmax(it.get_tensor(out["index"])[0]))
        with torch.inference_mode():
            ours = int(model(preprocess_uint8(torch.from_numpy(img[None]))).argmax(1)[0])
        agree += ref == ours
        rows.append((p.name, ref, ours))
    return {"images": len(files), "agree": agree, "agreement": agree / max(len(files), 1), "rows": rows}


def main(argv: list[str] | None = None) -> None:
    from vidcolor.models.mobilenet_v2 import WEIGHTS_PATH

    ap = argparse.ArgumentParser(prog="python -m vidcolor.models.convert_tflite")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("tflite")
    c.add_argument("-o", "--out", default=str(WEIGHTS_PATH))
    k = sub.add_parser("check")
    k.add_argument("tflite")
    k.add_argument("images")
    k.add_argument("--weights", default=None)
    args = ap.parse_args(argv)
    if args.cmd == "convert":
        save(convert(args.tflite), args.out)
        print(f"wrote {args.out}")
    else:
        res = check(args.tflite, args.images, args.weights)
        print(json.dumps({k: v for k, v in res.items() if k != "rows"}))


if __name__ == "__main__":
    main()
