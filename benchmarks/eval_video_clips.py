"""``vidcolor eval video`` over the shared colour clips: cockatoo, bikes and the four Vid4 clips.

Each clip is desaturated, colorized through the pipeline and compared with its original (see
``vidcolor.evaluation.video``); figures are averaged over each clip's frames, then over clips.
Targets (issue 11): PSNR never more than 0.5 dB below a clip's grey baseline, on average at least
grey + 0.3 dB; colourfulness ratio between 0.6 and 1.3 on every clip.

    .venv/bin/python benchmarks/eval_video_clips.py ../shared/data/videos --model default \\
        --out benchmarks/results/eval_video_v3.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vidcolor.evaluation import targets as T

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CLIPS = ("cockatoo.mp4", "bikes.mp4", "vid4_calendar.mp4", "vid4_city.mp4", "vid4_foliage.mp4", "vid4_walk.mp4")


def summarize(rows: dict) -> dict:
    gains = [r["psnr_over_grey_db"] for r in rows.values()]
    ratios = [r["colourfulness_ratio"] for r in rows.values()]
    return {
        "mean_psnr_over_grey_db": float(np.mean(gains)),
        "worst_psnr_over_grey_db": float(np.min(gains)),
        "mean_colourfulness_ratio": float(np.mean(ratios)),
        "mean_realism_fd": float(np.mean([r["realism_fd"] for r in rows.values()])),
        "mean_grey_realism_fd": float(np.mean([r["grey_realism_fd"] for r in rows.values()])),
        "targets": {
            "never_below_grey_minus_0.5_db": bool(min(gains) >= T.VIDEO_PSNR_FLOOR_DB),
            "mean_at_least_grey_plus_0.3_db": bool(np.mean(gains) >= T.VIDEO_PSNR_MEAN_DB),
            "ratio_within_0.6_1.3_every_clip": bool(all(T.VIDEO_COLOURFULNESS_RANGE[0] <= r <= T.VIDEO_COLOURFULNESS_RANGE[1]
                                                        for r in ratios)),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("videos", type=Path)
    ap.add_argument("--model", default="default")
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--clips", nargs="*", default=list(CLIPS))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from vidcolor.cli._common import quiet_services

    quiet_services(False)
    from flows.colorize_film import run_colorize_film
    from vidcolor.evaluation.video import evaluate_video, format_summary, write_report
    from vidcolor.settings import ChromaSettings

    rows = {}
    for name in args.clips:
        report = evaluate_video(args.videos / name, run_colorize_film, ChromaSettings(model=args.model, render_size=args.render_size),
                                frames=args.frames, log=lambda m: print(m, flush=True))
        report.pop("per_frame")
        rows[name] = report
        print(format_summary(report), flush=True)
        write_report({"model": report["model"], "clips": rows, "partial": True}, args.out)
    write_report({"model": next(iter(rows.values()))["model"], "render_size": args.render_size,
                  "frames_limit": args.frames, "clips": rows, "summary": summarize(rows)}, args.out)
    print(json.dumps(summarize(rows), indent=1))


if __name__ == "__main__":
    main()
