"""What the temporal parts cost: the colorize stage of one chunk, frame by frame vs the default
(temporal attention + stabiliser), in process, one thread, alternating rounds.

CPU seconds (this process, all threads) are reported beside wall seconds: on a shared machine the
wall time follows the other jobs' load, the CPU time much less. The rest of the pipeline (split,
stitch, encode, mux) does the same work in both configurations; ``pipeline_estimate`` adds the
stage times of a whole run from temporal_quality.json to turn the stage ratio into a pipeline ratio.

    PYTHONPATH=. .venv/bin/python benchmarks/temporal_throughput.py --clip bikes --frames 72
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEOS = REPO.parent / "shared" / "data" / "videos"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="bikes")
    ap.add_argument("--frames", type=int, default=72)  # a 48-frame core with 12 overlap frames each side
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "temporal_throughput.json"))
    ap.add_argument("--quality", default=str(REPO / "benchmarks" / "results" / "temporal_quality.json"))
    args = ap.parse_args()

    import cv2
    import numpy as np
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from vidcolor.colorizers import load_colorizer
    from vidcolor.media.luma import iter_luma
    from vidcolor.plan import Chunk
    from vidcolor.render import render_size
    from vidcolor.settings import ChromaSettings
    from vidcolor.stabilize import StabilizerParams, stabilize_ab
    from vidcolor.stages.colorize import predict_chunk_ab, quantize_ab

    settings = ChromaSettings()
    colorizer = load_colorizer("default", device="cpu")
    frames = []
    for fr in iter_luma(str(VIDEOS / f"{args.clip}.mp4")):
        if not frames:
            rw, rh = render_size(fr.y.shape[1], fr.y.shape[0], settings.render_size, colorizer.size_multiple)
        frames.append(cv2.resize(fr.y, (rw, rh), interpolation=cv2.INTER_AREA))
        if len(frames) == args.frames:
            break
    luma = np.stack(frames)
    chunk = Chunk(0, 0, 0, len(luma), 0, len(luma))
    batch = colorizer.preferred_batch_size()
    predict_chunk_ab(colorizer, luma[:batch], False, Chunk(0, 0, 0, batch, 0, batch), batch)  # warm-up

    def frame_by_frame():
        colorizer.set_temporal_attention(False)
        return predict_chunk_ab(colorizer, luma, False, chunk, batch)

    def default():
        colorizer.set_temporal_attention(True)
        ab = predict_chunk_ab(colorizer, luma, False, chunk, batch)
        t = (time.time(), cpu_seconds())
        out = quantize_ab(stabilize_ab(luma, ab, StabilizerParams(strength=settings.stabilize_strength)))
        stab["wall"] += time.time() - t[0]
        stab["cpu"] += cpu_seconds() - t[1]
        return out

    stab = {"wall": 0.0, "cpu": 0.0}
    totals = {"frame-by-frame": {"wall": 0.0, "cpu": 0.0}, "default": {"wall": 0.0, "cpu": 0.0}}
    for _ in range(args.rounds):
        for name, fn in (("frame-by-frame", frame_by_frame), ("default", default)):
            w, c = time.time(), cpu_seconds()
            fn()
            totals[name]["wall"] += time.time() - w
            totals[name]["cpu"] += cpu_seconds() - c
    n = args.rounds * len(luma)
    res = {
        "clip": args.clip, "frames_per_round": len(luma), "rounds": args.rounds, "render_size": [int(rw), int(rh)],
        "threads": 1,
        "per_frame_seconds": {k: {m: round(v[m] / n, 4) for m in v} for k, v in totals.items()},
        "stabiliser_per_frame_seconds": {m: round(v / n, 4) for m, v in stab.items()},
        "colorize_stage_throughput_ratio": {m: round(totals["frame-by-frame"][m] / totals["default"][m], 3)
                                            for m in ("wall", "cpu")},
    }
    # the whole pipeline: the other stages cost the same in both configurations
    qpath = Path(args.quality)
    if qpath.exists():
        runs = json.loads(qpath.read_text())["runs"]
        fbf = runs.get(f"{args.clip}/frame-by-frame")
        if fbf and fbf.get("timings"):
            t = fbf["timings"]
            colorize = t.get("colorize", 0.0)
            other = t.get("split", 0.0) + t.get("stitch_chunk_seconds", 0.0) / 2 + t.get("concat_mux", 0.0)
            r = res["colorize_stage_throughput_ratio"]["cpu"]
            res["pipeline_estimate"] = {
                "from": f"{args.clip}/frame-by-frame stage times in {qpath.name} (stitch: 2 chunks at once)",
                "frame_by_frame_seconds": round(colorize + other, 1),
                "default_seconds": round(colorize / r + other, 1),
                "throughput_ratio": round((colorize + other) / (colorize / r + other), 3),
            }
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
