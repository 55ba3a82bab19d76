"""int8 on the CPU path, as issue 17 asks ("int8 where the quality table allows"): the OpenVINO
networks the pipeline runs, quantised after training with NNCF, measured for speed and on the
colour issue's eval table.

    python -m benchmarks.int8_probe     # writes benchmarks/results/int8_probe.json

NNCF is not a dependency (install it from PyPI beside the project to run this; the committed
result was made so). Calibration: the network inputs of 200 photos from the shared data's train/
folder (never eval/), at render size 256, as ``vidcolor eval images`` feeds them. Variants: the
per-frame network alone (encoder, bottleneck, spatial attention), the bins head's decoder alone,
and both; the temporal block and the bins decoding stay as they are (bf16, fp32). Speed: batch 8 of
352x256 frames (val/ photos), threads = cores, each variant timed against bf16 alternately.
Quality: ``evaluate_images`` over eval/ (198 photos), against bf16's row from the same code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED_IMAGES = REPO.parent / "shared" / "data" / "images"
RESULT = REPO / "benchmarks" / "results" / "int8_probe.json"
CALIBRATION_PHOTOS = 200


def main() -> None:
    import cv2
    import nncf
    import numpy as np
    import openvino as ov
    import torch

    from vidcolor.color import rgb_to_lab
    from vidcolor.colorizers import load_colorizer
    from vidcolor.evaluation.images import evaluate_images, list_images, read_rgb
    from vidcolor.models.openvino_runtime import _exported
    from vidcolor.store.base import cache_root
    from vidcolor.training.int8_calibration import calibration_inputs, quantise

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    os.environ["VIDCOLOR_INT8"] = "off"  # the networks as exported, quantised here
    colorizer = load_colorizer("default", device="cpu")
    net = colorizer.openvino
    if net is None or net.precision != "bf16":
        raise SystemExit(f"needs the OpenVINO bf16 path (this machine runs {colorizer.runtime})")
    files = _exported(colorizer.generator, colorizer._identity, cache_root() / "openvino")
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    bf16_networks = {"per_frame": net._per_frame, "head_logits": net._head}

    # calibration inputs: what the two networks see while train/ photos are colorized
    seen = calibration_inputs(colorizer, ("_per_frame", "_head"), SHARED_IMAGES / "train", CALIBRATION_PHOTOS, 256)
    int8_networks = {}
    for name, attribute in (("per_frame", "_per_frame"), ("head_logits", "_head")):
        t0 = time.time()
        quantised = quantise(core.read_model(str(files[name])), seen[attribute])
        int8_networks[name] = core.compile_model(quantised, "CPU", config)
        print(f"{name}: quantised in {time.time() - t0:.1f} s", flush=True)

    photos = list_images(SHARED_IMAGES / "val")[:16]
    lightness = [cv2.resize(rgb_to_lab(read_rgb(p).astype(np.float32) / 255)[..., 0], (352, 256),
                            interpolation=cv2.INTER_AREA) for p in photos]
    batches = [np.stack(lightness[k:k + 8]).astype(np.float32) for k in (0, 8)]

    def use(variant: str) -> None:
        net._per_frame = int8_networks["per_frame"] if variant in ("per_frame", "both") else bf16_networks["per_frame"]
        net._head = int8_networks["head_logits"] if variant in ("head_logits", "both") else bf16_networks["head_logits"]

    def seconds_for_48_frames() -> float:
        t0 = time.perf_counter()
        for k in range(6):
            colorizer.predict_ab(batches[k % 2])
        return time.perf_counter() - t0

    variants = ["bf16", "per_frame", "head_logits", "both"]
    best = {v: float("inf") for v in variants}
    for _ in range(4):  # alternately, so that a busy moment of the machine falls on every variant alike
        for v in variants:
            use(v)
            colorizer.predict_ab(batches[0])
            best[v] = min(best[v], seconds_for_48_frames())
    rows = {}
    for v in variants:
        use(v)
        report = evaluate_images(SHARED_IMAGES / "eval", colorizer, Path(f"/tmp/vidcolor-int8-eval-{v}"),
                                 render_size=256, sheet_count=2, log=lambda *a: None)
        ours, grey = report["table"]["ours"], report["table"]["grey"]
        rows[v] = {"fps": round(48 / best[v], 2), "x_bf16": round(best["bf16"] / best[v], 3),
                   "psnr_over_grey_db": round(ours["psnr"] - grey["psnr"], 4),
                   "colourfulness_ratio": round(ours["colourfulness_ratio"], 3), "top1": round(ours["top1"], 3),
                   "realism_fd": round(ours["realism_fd"], 1)}
        print(v, json.dumps(rows[v]), flush=True)
    for v in variants[1:]:
        rows[v]["db_vs_bf16"] = round(rows[v]["psnr_over_grey_db"] - rows["bf16"]["psnr_over_grey_db"], 4)
        rows[v]["within_0.05_db"] = abs(rows[v]["db_vs_bf16"]) <= 0.05
    result = {"benchmark": "int8_probe", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": threads,
              "nncf": nncf.__version__, "openvino": ov.__version__, "calibration_photos": CALIBRATION_PHOTOS,
              "model": colorizer._identity, "variants": rows}
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
