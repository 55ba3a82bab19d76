"""Pipeline speed and memory: colorize synthetic films of several lengths through the real CLI
(local store, local Ray, ephemeral Prefect) and record wall time, per-stage timings, frames per
second and the peak memory of the whole process tree (driver, Ray, Prefect).

Memory should stay flat as the film gets longer: the film is streamed, never held.

    .venv/bin/python benchmarks/bench_pipeline.py --seconds 10 40 --model default --out benchmarks/results/pipeline.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def session_rss_bytes(sid: int) -> int:
    """Sum of RSS of every process in session ``sid`` (the CLI, Ray's daemons and workers, the
    Prefect server all start inside it)."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) != sid:  # field 6 of stat: session id
                continue
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_one(seconds: float, size: tuple[int, int], model: str, workers: int, work: Path) -> dict:
    from vidcolor.media.synth import make_test_film

    film = work / f"film-{seconds:g}s.mp4"
    frames = int(seconds * 24000 / 1001)
    scenes = [frames // 3, frames // 3, frames - 2 * (frames // 3)]
    make_test_film(film, scenes, size=size)
    out = work / f"out-{seconds:g}s.mp4"
    store = work / f"store-{seconds:g}s"
    cmd = [str(REPO / ".venv" / "bin" / "vidcolor"), "colorize", str(film), "-o", str(out), "--store", str(store),
           "--model", model, "--workers", str(workers), "--json"]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    peak = 0
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, session_rss_bytes(proc.pid))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.time() - t0
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"colorize failed: {stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    run_json = json.loads(next(store.glob("runs/*/run.json")).read_text())
    inv = run_json["invocations"][-1]
    return {
        "seconds_of_film": seconds,
        "frames": result["frames"],
        "size": list(size),
        "model": model,
        "workers": workers,
        "wall_seconds": round(wall, 2),
        "pipeline_seconds": inv.get("wall_seconds"),
        "stage_seconds": inv.get("timings", {}),
        "frames_per_second_end_to_end": round(result["frames"] / wall, 2),
        "frames_per_second_colorize": round(result["frames"] / inv["timings"]["colorize"], 2) if inv.get("timings", {}).get("colorize") else None,
        "peak_rss_mib_process_tree": round(peak / 2**20, 1),
        "output_bytes": result["bytes"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, nargs="+", default=[10, 40])
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--model", default="default")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pipeline.json"))
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        runs = [run_one(s, (w, h), args.model, args.workers, Path(tmp)) for s in args.seconds]
    peaks = [r["peak_rss_mib_process_tree"] for r in runs]
    report = {
        "benchmark": "pipeline",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "runs": runs,
        "memory_growth_ratio_longest_vs_shortest": round(peaks[-1] / peaks[0], 3) if len(peaks) > 1 else None,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
