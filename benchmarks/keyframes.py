"""Colour keyframes through the whole pipeline (issue 12).

Each colour clip of ../shared/data/videos is desaturated with ffmpeg (hue=s=0) into a temp folder;
its own first frame, in colour, is the only keyframe. The clip is colorized twice with the chunk
cap forced to 24 frames (so propagation crosses chunk boundaries): automatically, and with the
keyframe. Measured against the colour original: PSNR averaged over all frames and over the last
quarter, and the seam score at every chunk join inside a scene (chroma change where two chunks
meet over the clip's median change between neighbouring frames).

    PYTHONPATH=. .venv/bin/python benchmarks/keyframes.py [--clips vid4_walk ...] [--render-size 256]

Results go to benchmarks/results/keyframes.json, rewritten after every clip.
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEOS = REPO.parent / "shared" / "data" / "videos"
CLIPS = ["cockatoo", "bikes", "vid4_calendar", "vid4_city", "vid4_foliage", "vid4_walk"]


def desaturate(clip: str, work: Path) -> Path:
    dst = work / f"{clip}-grey.mp4"
    if not dst.exists():
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(VIDEOS / f"{clip}.mp4"),
                        "-vf", "hue=s=0", "-c:v", "libx264", "-crf", "12", "-preset", "veryfast", "-an", str(dst)],
                       check=True)
    return dst


def first_frame_keyframe(clip: str, work: Path) -> Path:
    from vidcolor.media.luma import iter_rgb
    from vidcolor.media.still import write_image_rgb

    folder = work / f"{clip}-keyframes"
    shutil.rmtree(folder, ignore_errors=True)
    frames = iter_rgb(str(VIDEOS / f"{clip}.mp4"))
    write_image_rgb(folder / "000000.png", next(frames))
    frames.close()
    return folder


def measure(video: Path, original: Path, plan: dict, keyframes=(0,)) -> dict:
    """PSNR (all frames, last quarter) and seam scores at every join inside a scene; the seams
    inside the scenes that hold a keyframe are also reported apart (the others are automatic)."""
    from vidcolor.evaluation.temporal import measure_frames, plan_joins, summarize
    from vidcolor.media.luma import iter_rgb
    from vidcolor.plan import Chunk

    m = measure_frames(iter_rgb(str(video)), iter_rgb(str(original)), scene_starts=plan["scene_starts"])
    chunks = [Chunk(**{k: c[k] for k in Chunk.__dataclass_fields__}) for c in plan["chunks"]]
    s = summarize(m, plan["scene_starts"], plan_joins(chunks))
    starts = np.asarray(plan["scene_starts"])
    keyed = {int(np.searchsorted(starts, k, side="right") - 1) for k in keyframes}
    seams = {int(j): v for j, v in (s.get("seams") or {}).items()}
    keyed_seams = [v for j, v in seams.items() if int(np.searchsorted(starts, j, side="right") - 1) in keyed]
    psnr = np.asarray(m.psnr)
    q = len(psnr) - len(psnr) // 4
    return {"psnr": float(psnr.mean()), "psnr_last_quarter": float(psnr[q:].mean()),
            "max_seam_score": s.get("max_seam_score"), "seam_scores": seams,
            "max_seam_score_keyed_scenes": max(keyed_seams) if keyed_seams else None,
            "scene_starts": plan["scene_starts"], "psnr_series": [round(float(x), 3) for x in psnr]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", nargs="*", default=CLIPS)
    ap.add_argument("--max-chunk-frames", type=int, default=24)
    ap.add_argument("--overlap-frames", type=int, default=8)
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--model", default="default")
    ap.add_argument("--cpus", type=float, default=2.0)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "vidcolor-keyframes-bench"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "keyframes.json"))
    ap.add_argument("--measure-only", action="store_true", help="re-measure the outputs in --work (no colorizing)")
    args = ap.parse_args()
    if args.measure_only:
        remeasure(Path(args.out), Path(args.work), args.clips)
        return

    from vidcolor.cli._common import quiet_services

    quiet_services(False)
    from flows.colorize_film import run_colorize_film
    from vidcolor.executor.ray_runtime import ensure_ray
    from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ensure_ray(args.cpus)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    results["setup"] = {"max_chunk_frames": args.max_chunk_frames, "overlap_frames": args.overlap_frames,
                        "render_size": args.render_size, "model": args.model, "keyframe": "the clip's own first frame"}
    clips = results.setdefault("clips", {})
    for clip in args.clips:
        grey = desaturate(clip, work)
        keyframes = first_frame_keyframe(clip, work)
        store = work / "stores" / clip
        shutil.rmtree(store, ignore_errors=True)
        row = {}
        for name, kf in (("auto", ""), ("keyframe", str(keyframes))):
            chroma = ChromaSettings(model=args.model, render_size=args.render_size,
                                    max_chunk_frames=args.max_chunk_frames, overlap_frames=args.overlap_frames,
                                    keyframes=kf)
            out = work / f"{clip}-{name}.mp4"
            t0 = time.time()
            r = run_colorize_film(str(grey), str(out), chroma, EncodeSettings(),
                                  ExecutionSettings(workers=1, cpus_per_worker=args.cpus), str(store))
            wall = time.time() - t0
            plan = json.loads((store / "runs" / r["run_id"] / "plan.json").read_text())
            row[name] = {"wall_seconds": round(wall, 2), **measure(out, VIDEOS / f"{clip}.mp4", plan)}
            row["chunks"] = len(plan["chunks"])
            row["frames"] = plan["total_frames"]
        row["gain_db"] = row["keyframe"]["psnr"] - row["auto"]["psnr"]
        row["gain_last_quarter_db"] = row["keyframe"]["psnr_last_quarter"] - row["auto"]["psnr_last_quarter"]
        clips[clip] = row
        save(results, out_path, clip)


def save(results: dict, out_path: Path, clip: str) -> None:
    row = results["clips"][clip]
    print(f"{clip:16s} auto {row['auto']['psnr']:.2f} dB  keyframe {row['keyframe']['psnr']:.2f} dB "
          f"(+{row['gain_db']:.2f}; last quarter +{row['gain_last_quarter_db']:.2f})  max seam "
          f"{row['keyframe']['max_seam_score']} (in the keyframe's scene {row['keyframe'].get('max_seam_score_keyed_scenes')}; "
          f"auto {row['auto']['max_seam_score']})", flush=True)
    done = list(results["clips"].values())
    results["summary"] = {
        "clips": len(done), "mean_gain_db": float(np.mean([c["gain_db"] for c in done])),
        "mean_gain_last_quarter_db": float(np.mean([c["gain_last_quarter_db"] for c in done])),
        "min_gain_db": float(min(c["gain_db"] for c in done)),
        "min_gain_last_quarter_db": float(min(c["gain_last_quarter_db"] for c in done)),
        "max_seam_score": max((c["keyframe"]["max_seam_score"] or 0) for c in done),
        "max_seam_score_keyed_scenes": max((c["keyframe"].get("max_seam_score_keyed_scenes") or 0) for c in done),
        "max_seam_score_auto": max((c["auto"]["max_seam_score"] or 0) for c in done)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(out_path)


def remeasure(out_path: Path, work: Path, clips: list[str]) -> None:
    results = json.loads(out_path.read_text())
    for clip in clips:
        row = results["clips"].get(clip)
        if row is None:
            continue
        plan = json.loads(next((work / "stores" / clip / "runs").glob("*/plan.json")).read_text())
        for name in ("auto", "keyframe"):
            row[name].update(measure(work / f"{clip}-{name}.mp4", VIDEOS / f"{clip}.mp4", plan))
        row["gain_db"] = row["keyframe"]["psnr"] - row["auto"]["psnr"]
        row["gain_last_quarter_db"] = row["keyframe"]["psnr_last_quarter"] - row["auto"]["psnr_last_quarter"]
        save(results, out_path, clip)


if __name__ == "__main__":
    main()
