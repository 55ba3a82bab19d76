"""Where a frame's time goes: each step of the pipeline timed alone, in process, on one 240-frame
chunk of a generated 640x480 clip (the render size the pipeline picks: 352x256). Issue 17's profile.

    python -m benchmarks.profile_stages            # writes benchmarks/results/profile_stages.json

Steps: split (decode, scene detection, render-size luma, chunk source write), the actor's work
(source read and digest check, model at the default precision and at fp32, int8 chroma packing and
store write), the stabiliser's scene pass, stitch (source decode, half-size chroma, YCbCr, x264
encode) and the final concat + mux. Milliseconds per frame, wall and CPU (all threads).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FRAMES = 240


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Clock:
    def __init__(self):
        self.rows = {}

    def __call__(self, name: str, frames: int):
        clock = self

        class _Timer:
            def __enter__(self):
                self.w, self.c = time.perf_counter(), cpu_s()

            def __exit__(self, *exc):
                wall, cpu = time.perf_counter() - self.w, cpu_s() - self.c
                clock.rows[name] = {"ms_per_frame_wall": round(1000 * wall / frames, 2),
                                    "ms_per_frame_cpu": round(1000 * cpu / frames, 2), "frames": frames}
                print(f"{name:28s} {1000 * wall / frames:8.2f} ms/frame wall {1000 * cpu / frames:8.2f} cpu",
                      file=sys.stderr, flush=True)

        return _Timer()


def main() -> None:
    import numpy as np
    import torch

    from benchmarks.pipeline import make_clip
    from vidcolor.colorizers import load_colorizer
    from vidcolor.job import prepare_job
    from vidcolor.run import Run
    from vidcolor.settings import ChromaSettings, EncodeSettings
    from vidcolor.stages.colorize import load_chunk_source, predict_chunk_ab, quantize_ab
    from vidcolor.state import pack_array, write_chunk_done

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="vidcolor-profile-") as tmp:
        work = Path(tmp)
        clip = work / "clip.mp4"
        make_clip(clip, FRAMES / (24000 / 1001))
        job = prepare_job(str(clip), str(work / "out.mp4"), ChromaSettings(), EncodeSettings(), str(work / "store"))
        run = Run(job)
        run.start()
        with clock("split", FRAMES):
            plan = run.split_source()
        n = plan.total_frames
        colorizer = load_colorizer("default", device="cpu")
        predict_chunk_ab(colorizer, np.zeros((16,) + tuple(plan.render_size[::-1]), np.uint8), False,
                         plan.chunks[0].__class__(0, 0, 0, 16, 0, 16), 8)  # warm-up
        lumas = {}
        with clock("actor: source read", n):
            for c in plan.chunks:
                lumas[c.index] = load_chunk_source(run.store, run.layout, c)
        ext = sum(c.ext_frames for c in plan.chunks)
        chroma = {}
        default_row = f"actor: model ({getattr(colorizer, 'runtime', 'torch')})"
        with clock(default_row, ext):
            for c in plan.chunks:
                chroma[c.index] = predict_chunk_ab(colorizer, lumas[c.index], False, c, 8)
        colorizer.bf16 = False
        fp32_row = f"actor: model ({getattr(colorizer, 'runtime', 'torch fp32')})"
        if fp32_row == default_row:  # a CPU without native bf16 ran fp32 already
            fp32_row += ", again"
        with clock(fp32_row, ext):
            for c in plan.chunks:
                predict_chunk_ab(colorizer, lumas[c.index], False, c, 8)
        with clock("actor: pack + store write", ext):
            for c in plan.chunks:
                write_chunk_done(run.store, run.layout, c.index, pack_array(ab=quantize_ab(chroma[c.index])),
                                 c.ext_frames, {"model": colorizer.identity})
        passes = run.scenes_to_stabilize(plan)
        scenes = {plan.chunks[first].scene for first in passes}
        with clock("stabiliser scene pass", n):
            for members in passes.values():
                run.stabilize_scene(plan, members)
        segments = []
        with clock("stitch (decode, chroma, x264)", n):
            for c in plan.chunks:
                segments.append(run.stitch(plan, c.index, c.scene in scenes))
        with clock("concat + mux", n):
            run.finalize(plan, segments)
    total = {k: v["ms_per_frame_cpu"] for k, v in clock.rows.items() if k != fp32_row}
    report = {"benchmark": "profile_stages", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "cpus": len(os.sched_getaffinity(0)), "frames": n, "render_size": list(plan.render_size),
              "steps": clock.rows, "cpu_ms_per_frame_pipeline": round(sum(total.values()), 2)}
    out = REPO / "benchmarks" / "results" / "profile_stages.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    write_doc(report)
    print(json.dumps(report, indent=2))


def write_doc(report: dict) -> None:
    """The table between the profile markers of docs/performance.md."""
    doc = REPO / "docs" / "performance.md"
    begin, end = "<!-- profile begins -->", "<!-- profile ends -->"
    rows = [f"Measured {report['when']}, {report['cpus']} cores, {report['frames']} frames at "
            f"{report['render_size'][0]}x{report['render_size'][1]}.", "",
            "| step | ms per frame, wall | ms per frame, CPU (all threads) |", "| --- | --- | --- |"]
    rows += [f"| {name} | {r['ms_per_frame_wall']} | {r['ms_per_frame_cpu']} |" for name, r in report["steps"].items()]
    rows += [f"| **whole pipeline at the default precision (CPU)** | | **{report['cpu_ms_per_frame_pipeline']}** |"]
    text = doc.read_text()
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        doc.write_text(head + begin + "\n" + "\n".join(rows) + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    main()
