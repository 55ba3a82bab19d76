"""The optimised runtimes issue 17 asks about, on the whole generator (batch 8 at 352x256, torch
threads = cores): torch fp32 and bf16, torch.compile (bf16), OpenVINO (fp32, bf16) and ONNX Runtime
(fp32) where installed. The whole graph reaches OpenVINO and ONNX Runtime through torch's ONNX
exporter, which needs onnxscript; neither it nor onnxruntime is a dependency (install both from
PyPI beside the project to measure them; the committed results were made so). Frames/s and the mean |ab| difference to torch
fp32 on the same smooth random luma.

    python -m benchmarks.runtime_probe          # writes benchmarks/results/runtime_probe.json

What it decided: OpenVINO runs the network on CPUs (vidcolor/models/openvino_runtime.py). The
pipeline runs it in three exported parts around a torch-free temporal block and decodes the bins
in fp32; ``benchmarks.pipeline`` measures that path as the actor calls it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def best_fps(fn, frames: int, rounds: int = 4) -> float:
    fn()
    best = min(_timed(fn) for _ in range(rounds))
    return round(frames / best, 2)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    import cv2
    import numpy as np
    import torch

    os.environ["VIDCOLOR_RUNTIME"] = "torch"
    from vidcolor.models.gan_colorizer import load_gan_colorizer

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    colorizer = load_gan_colorizer(None, "cpu")
    gen, radius, gain = colorizer.generator.float().eval(), colorizer.temporal_context, colorizer.chroma_gain

    class Whole(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gen = gen

        def forward(self, lightness):
            return self.gen(lightness, radius=radius) * gain

    model = Whole().eval()
    rng = np.random.default_rng(0)
    L = np.stack([cv2.GaussianBlur(rng.uniform(0, 100, (256, 352)).astype(np.float32), (0, 0), 3) for _ in range(8)])
    x = torch.from_numpy(L)[:, None].contiguous()
    n = len(L)
    rows: dict[str, dict] = {}
    with torch.inference_mode():
        ref = model(x).numpy()

        def row(name, fn, out, **extra):
            rows[name] = {"fps": best_fps(fn, n), "ab_mean_difference": round(float(np.abs(out - ref).mean()), 4), **extra}
            print(name, rows[name], file=sys.stderr, flush=True)

        row("torch fp32", lambda: model(x), ref)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            row("torch bf16", lambda: model(x), model(x).float().numpy())
            compiled = torch.compile(model)
            t0 = time.perf_counter()
            out = compiled(x).float().numpy()
            row("torch.compile bf16", lambda: compiled(x), out, first_call_s=round(time.perf_counter() - t0, 1))
    import importlib.util

    if importlib.util.find_spec("onnxscript") is None:  # torch's exporter of the whole graph needs it
        rows["openvino (whole graph)"] = {"skipped": "onnxscript is not installed (not a dependency)"}
        return finish(rows, threads, n)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = Path(tmp) / "generator.onnx"
        with torch.no_grad():
            torch.onnx.export(model, (x,), str(onnx), input_names=["L"], output_names=["ab"], dynamo=True)
        import openvino as ov

        core = ov.Core()
        for hint in ("f32", "bf16"):
            c = core.compile_model(core.read_model(str(onnx)), "CPU", {
                "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"})
            req = c.create_infer_request()
            row(f"openvino {hint.replace('f32', 'fp32')} (whole graph)", lambda: req.infer({0: L[:, None]}),
                req.infer({0: L[:, None]})[0])
        try:
            import onnxruntime as ort
        except ImportError:
            rows["onnxruntime fp32"] = {"skipped": "onnxruntime is not installed (not a dependency)"}
        else:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            sess = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
            row("onnxruntime fp32", lambda: sess.run(None, {"L": L[:, None]}), sess.run(None, {"L": L[:, None]})[0])
    finish(rows, threads, n)


def finish(rows: dict, threads: int, n: int) -> None:
    report = {"benchmark": "runtime_probe", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "threads": threads, "batch": n, "render_size": [352, 256], "runtimes": rows}
    out = REPO / "benchmarks" / "results" / "runtime_probe.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
