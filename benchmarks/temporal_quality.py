"""Temporal quality and cost of the temporal parts, through the whole pipeline (issue 13).

Each clip of ../shared/data/videos is desaturated with ffmpeg (hue=s=0) into a temp folder, then
colorized with the chunk cap forced to 48 frames and overlap 12 (so many joins fall inside scenes),
in several configurations:

  frame-by-frame   temporal attention off, stabiliser off
  default          vidcolor's defaults (attention on, stabiliser on)
  attention-only   attention on, stabiliser off
  overlap-4/-20    the default with 4 / 20 overlap frames

Measured on the output: CDC, warp error (and their ratios to the colour original's), PSNR/SSIM
against the original, seam scores at every non-cut join, wall time (throughput). After each
default run, the stored chunk chroma is re-blended with other ramp shapes (linear, cosine, step)
and the seam scores are measured at render size (no re-inference).

    PYTHONPATH=. .venv/bin/python benchmarks/temporal_quality.py --out benchmarks/results/temporal_quality.json

Results are written after every run, so a partial run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEOS = REPO.parent / "shared" / "data" / "videos"

COLOUR_CLIPS = ["cockatoo", "bikes", "vid4_calendar", "vid4_city", "vid4_foliage", "vid4_walk"]
GREY_CLIPS = ["a-bomb_blast_effects_part"]
CONFIGS = {
    "frame-by-frame": dict(temporal_attention=False, stabilize=False),
    "default": dict(),
    "attention-only": dict(stabilize=False),
    "overlap-4": dict(overlap_frames=4),
    "overlap-20": dict(overlap_frames=20),
}


def desaturate(clip: str, work: Path) -> Path:
    dst = work / f"{clip}-grey.mp4"
    if not dst.exists():
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(VIDEOS / f"{clip}.mp4"),
                        "-vf", "hue=s=0", "-c:v", "libx264", "-crf", "12", "-preset", "veryfast", "-c:a", "copy", str(dst)],
                       check=True)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", nargs="*", default=COLOUR_CLIPS + GREY_CLIPS)
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS))
    ap.add_argument("--max-chunk-frames", type=int, default=48)
    ap.add_argument("--overlap-frames", type=int, default=12)
    ap.add_argument("--cpus", type=float, default=2.0)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "vidcolor-temporal-bench"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "temporal_quality.json"))
    ap.add_argument("--measure-only", action="store_true",
                    help="re-measure the outputs of runs already in --out (no colorizing)")
    ap.add_argument("--measure-into", help="with --measure-only: write the updated results here, not to --out")
    args = ap.parse_args()
    if args.measure_only:
        remeasure(Path(args.out), Path(args.measure_into or args.out), args.clips, args.configs)
        return

    from vidcolor.cli._common import quiet_services

    quiet_services(False)
    from flows.colorize_film import run_colorize_film
    from vidcolor.executor.ray_runtime import ensure_ray
    from vidcolor.report import Target, measure_target, run_temporal_summary
    from vidcolor.state import RunLayout
    from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings
    from vidcolor.store import open_store

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ensure_ray(args.cpus)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "note":
                          "shared 2-core machine (other jobs running): wall times are noisy; compare pairs"}
    results["setup"] = {"max_chunk_frames": args.max_chunk_frames, "overlap_frames": args.overlap_frames,
                        "cpus_per_worker": args.cpus, "workers": 1, "render_size": ChromaSettings().render_size}
    runs = results.setdefault("runs", {})

    # warm up Ray, Prefect and the model's first call so the first measured run is not the slowest
    warm = desaturate("vid4_walk", work)
    run_colorize_film(str(warm), str(work / "warmup.mp4"), ChromaSettings(stabilize=False), EncodeSettings(),
                      ExecutionSettings(workers=1, cpus_per_worker=args.cpus), str(work / "warmup-store"))

    for clip in args.clips:
        grey = desaturate(clip, work)
        original = str(VIDEOS / f"{clip}.mp4") if clip in COLOUR_CLIPS else None
        for name in args.configs:
            cfg = {"max_chunk_frames": args.max_chunk_frames, "overlap_frames": args.overlap_frames, **CONFIGS[name]}
            chroma = ChromaSettings(**cfg)
            out = work / f"{clip}-{name}.mp4"
            # a fresh store per run: nothing reused, so the wall time is the whole pipeline's
            store_uri = str(work / "stores" / f"{clip}-{name}")
            shutil.rmtree(store_uri, ignore_errors=True)
            t0 = time.time()
            r = run_colorize_film(str(grey), str(out), chroma, EncodeSettings(),
                                  ExecutionSettings(workers=1, cpus_per_worker=args.cpus), store_uri)
            wall = time.time() - t0
            store = open_store(store_uri)
            layout = RunLayout(r["run_id"])
            plan = store.get_json(layout.plan)
            run = store.get_json(layout.run_json)
            _, report, scenes, _ = measure_target(Target(video=str(out), plan=plan, run_id=r["run_id"]), original)
            row = {"clip": clip, "config": name, "settings": cfg, "run_id": r["run_id"], "store": store_uri, "frames": r["frames"],
                   "wall_seconds": round(wall, 2), "timings": run["invocations"][-1].get("timings"),
                   "summary": report["summary"], "scenes": scenes, "chunk_joins": report["chunk_joins"],
                   "series": report["series"]}
            if name == "default":
                row["ramps_render_size"] = {ramp: run_temporal_summary(store, layout, plan, ramp=ramp)
                                            for ramp in ("linear", "cosine", "step")}
            runs[f"{clip}/{name}"] = row
            s = report["summary"]
            print(f"{clip:28s} {name:15s} {wall:7.1f}s cdc={s['cdc']:.5f} ratio={s.get('cdc_ratio')} "
                  f"warp={s['warp_error']:.6f} ratio={s.get('warp_error_ratio')} psnr={s.get('psnr')} "
                  f"max_seam={s['max_seam_score']}", flush=True)
            tmp = out_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1))
            tmp.replace(out_path)


def remeasure(in_path: Path, out_path: Path, clips: list[str], configs: list[str]) -> None:
    from vidcolor.report import Target, measure_target

    results = json.loads(in_path.read_text())
    work = Path(next(iter(results["runs"].values()))["store"]).parents[1]
    for key, row in results["runs"].items():
        store = Path(row["store"])
        if row["clip"] not in clips or row["config"] not in configs:
            continue
        out = work / f"{row['clip']}-{row['config']}.mp4"
        run = json.loads((store / "runs" / row["run_id"] / "run.json").read_text())
        if not out.exists() or run["invocations"][-1].get("output") != str(out):
            print(f"{key}: output gone, skipped")
            continue
        plan = json.loads((store / "runs" / row["run_id"] / "plan.json").read_text())
        original = str(VIDEOS / f"{row['clip']}.mp4") if row["clip"] in COLOUR_CLIPS else None
        _, report, scenes, _ = measure_target(Target(video=str(out), plan=plan, run_id=row["run_id"]), original)
        row.update(summary=report["summary"], scenes=scenes, series=report["series"])
        print(key, {k: report["summary"].get(k) for k in ("cdc_ratio", "chroma_warp_error_ratio", "psnr")}, flush=True)
        tmp = out_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(out_path)


if __name__ == "__main__":
    main()
