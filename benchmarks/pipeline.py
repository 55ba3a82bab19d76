"""Pipeline speed against the model's own speed and against the frame-dump way (issue 17).

    python -m benchmarks.pipeline            # from the project root, after the README's set-up

Measured side by side on this machine, all with the shipped model at the render size the pipeline
picks for 640x480 (352x256):

- ``model_fps``: the colorizer alone on frames already in memory (one 240-frame chunk of the clip's
  luma at the render size, batch 8, torch threads = cores), as the actor calls it;
  ``model_fps_fp32`` the same in torch fp32 (the path before this work); ``model.runtimes`` every
  runtime and precision (torch, OpenVINO; fp32, bf16) with its chroma's difference to torch fp32's;
- ``e2e_fps``: ``vidcolor colorize`` on the embedded default (local store, local Ray, ephemeral
  Prefect) on a generated 2-minute 640x480 clip with audio, wall time of the whole command;
- ``overhead_s``: wall time of the same command on a 2-second clip; ``overhead_warm_s`` the same
  with ``vidcolor services`` running (a warm Ray and Prefect server);
- ``peak_rss_1min_mb`` / ``peak_rss_8min_mb``: peak memory (RSS summed over the command's whole
  process tree: the CLI, Ray's daemons and workers, the Prefect server) on 1- and 8-minute clips;
- ``framedump_fps``: the DeOldify way with the same model: every frame dumped to a PNG by ffmpeg,
  colorized one image at a time (read, predict, write a PNG), re-encoded and muxed with the audio
  by ffmpeg; on the first ``--framedump-seconds`` of the 2-minute clip (its frames/s does not
  depend on the length).

Writes ``benchmarks/results/pipeline.json`` and the table in ``docs/performance.md`` between its
markers. Run it on an otherwise idle machine: every figure is a wall time.
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
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESULT = REPO / "benchmarks" / "results" / "pipeline.json"
DOC = REPO / "docs" / "performance.md"
SIZE = (640, 480)
RATE = "24000/1001"
FPS = 24000 / 1001
SCENE_SECONDS = 30  # the generated clips cut to a new scene every 30 s


def session_rss_bytes(sid: int) -> int:
    """RSS summed over every process of session ``sid`` (the command starts Ray and Prefect in it)."""
    from vidcolor.lease import process_stat

    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in os.listdir("/proc"):
        fields = process_stat(pid) if pid.isdigit() else None
        if fields is None or int(fields[3]) != sid:  # field 6 of stat: the session id
            continue
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def make_clip(path: Path, seconds: float) -> int:
    """A 640x480 black-and-white clip with stereo audio, a new scene every SCENE_SECONDS."""
    from vidcolor.media.synth import make_test_film

    frames = max(1, round(seconds * FPS))
    per_scene = round(SCENE_SECONDS * FPS)
    scenes = [per_scene] * (frames // per_scene) + ([frames % per_scene] if frames % per_scene else [])
    make_test_film(path, scenes, size=SIZE, rate=RATE, audio=True, subtitles=False, title=None)
    return frames


def vidcolor_command() -> list[str]:
    exe = Path(sys.executable).with_name("vidcolor")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "vidcolor.cli"]


def run_colorize(clip: Path, work: Path, extra: list[str] | None = None, warm: bool = False) -> dict:
    """``vidcolor colorize`` on the embedded default, in a session of its own: wall time, peak RSS
    of its whole process tree, the stage timings from run.json. Cold (its own Ray and Prefect)
    unless ``warm``: then on the running `vidcolor services`."""
    store = work / f"store-{clip.stem}"
    out = work / f"out-{clip.stem}.mp4"
    cmd = vidcolor_command() + ["colorize", str(clip), "-o", str(out), "--store", str(store), "--json"] + (extra or [])
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "RAY_ADDRESS", "VIDCOLOR_SERVICES")}
    if not warm:
        env["VIDCOLOR_SERVICES"] = "off"
    peak = 0
    stop = threading.Event()
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, session_rss_bytes(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.time() - t0
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"vidcolor colorize {clip.name} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    inv = json.loads(next(store.glob("runs/*/run.json")).read_text())["invocations"][-1]
    shutil.rmtree(store, ignore_errors=True)
    out.unlink(missing_ok=True)
    return {"clip_seconds": round(result["frames"] / FPS, 2), "frames": result["frames"], "wall_s": round(wall, 2),
            "fps": round(result["frames"] / wall, 2), "pipeline_s": inv.get("wall_seconds"),
            "timings_s": inv.get("timings", {}), "peak_rss_mb": round(peak / 2**20, 1)}


def model_only(clip: Path, frames: int = 240, batch: int = 8, rounds: int = 2) -> dict:
    """The colorizer alone on one chunk of the clip's luma at the render size, in memory, as the
    actor runs it (predict_chunk_ab); the better of ``rounds`` timed passes after a warm-up.
    Returns fps of the default (``model_fps``), of torch in fp32 (``model_fps_fp32``: the path
    before this work) and of every runtime and precision, with their chroma's difference to torch
    fp32's (int8 ab units)."""
    import cv2
    import numpy as np
    import torch

    from vidcolor.colorizers import load_colorizer
    from vidcolor.media.luma import iter_luma
    from vidcolor.plan import Chunk
    from vidcolor.render import render_size
    from vidcolor.settings import ChromaSettings
    from vidcolor.stages.colorize import predict_chunk_ab

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    luma = []
    for fr in iter_luma(str(clip)):
        if not luma:
            size = render_size(fr.y.shape[1], fr.y.shape[0], ChromaSettings().render_size, 32)
        luma.append(cv2.resize(fr.y, size, interpolation=cv2.INTER_AREA))
        if len(luma) == frames:
            break
    luma = np.stack(luma)
    chunk = Chunk(0, 0, 0, len(luma), 0, len(luma))
    out = {"frames": len(luma), "render_size": list(size), "batch": batch, "threads": threads, "runtimes": {}}
    results = {}
    saved = {k: os.environ.get(k) for k in ("VIDCOLOR_PRECISION", "VIDCOLOR_RUNTIME", "VIDCOLOR_INT8")}
    # torch fp32 first: the path before this work, and what the others' chroma is compared with;
    # the default (auto: OpenVINO bf16 with the int8 head decoder) last
    configs = (("torch", "fp32", "off"), ("torch", "auto", "off"), ("openvino", "fp32", "off"),
               ("openvino", "auto", "off"), ("auto", "auto", "auto"))
    try:
        for runtime, precision, int8 in configs:
            os.environ["VIDCOLOR_RUNTIME"], os.environ["VIDCOLOR_PRECISION"] = runtime, precision
            os.environ["VIDCOLOR_INT8"] = int8
            colorizer = load_colorizer("default", device="cpu")
            label = getattr(colorizer, "runtime", "torch")
            predict_chunk_ab(colorizer, luma[:24], False, Chunk(0, 0, 0, 24, 0, 24), batch)  # warm-up
            best = min(_timed(lambda: results.__setitem__(label, predict_chunk_ab(colorizer, luma, False, chunk, batch)))
                       for _ in range(rounds))
            diff = np.abs(results[label].astype(np.int16) - results["torch fp32"].astype(np.int16))
            out["runtimes"][label] = {"fps": round(len(luma) / best, 2), "ab_difference_to_torch_fp32": {
                "mean": round(float(diff.mean()), 3), "p99": float(np.percentile(diff, 99))}}
            if (runtime, precision, int8) == ("auto", "auto", "auto"):
                out["model_fps"], out["model_runtime"] = out["runtimes"][label]["fps"], label
                out["ab_difference_to_fp32"] = out["runtimes"][label]["ab_difference_to_torch_fp32"]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out["model_fps_fp32"] = out["runtimes"]["torch fp32"]["fps"]
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def framedump(clip: Path, work: Path, seconds: float) -> dict:
    """The frame-dump baseline: ffmpeg dumps every frame to PNG, each PNG is colorized alone by
    the same model (temporal attention off: an image at a time) and written as a PNG, ffmpeg
    encodes the PNGs and muxes the clip's audio back."""
    import cv2
    import numpy as np
    import torch

    from vidcolor.color import lab_to_rgb, luma_to_lightness
    from vidcolor.colorizers import load_colorizer
    from vidcolor.render import render_size
    from vidcolor.settings import ChromaSettings

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    dump, done = work / "dump", work / "dump-colour"
    dump.mkdir()
    done.mkdir()
    colorizer = load_colorizer("default", device="cpu")
    colorizer.set_temporal_attention(False)
    ff = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    t0 = time.time()
    subprocess.run(ff + ["-t", f"{seconds}", "-i", str(clip), "-vf", "format=gray", "-start_number", "0",
                         str(dump / "%06d.png")], check=True)
    t1 = time.time()
    pngs = sorted(dump.glob("*.png"))
    for png in pngs:
        y = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
        h, w = y.shape
        L = luma_to_lightness(y, full_range=False)
        rw, rh = render_size(w, h, ChromaSettings().render_size, colorizer.size_multiple)
        small = cv2.resize(L, (rw, rh), interpolation=cv2.INTER_AREA)
        ab = colorizer.predict_ab(small[None].astype(np.float32))[0]
        ab = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
        rgb = np.clip(np.rint(lab_to_rgb(np.dstack([L, ab])) * 255), 0, 255).astype(np.uint8)
        cv2.imwrite(str(done / png.name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    t2 = time.time()
    out = work / "framedump.mp4"
    subprocess.run(ff + ["-framerate", RATE, "-start_number", "0", "-i", str(done / "%06d.png"), "-t", f"{seconds}",
                         "-i", str(clip), "-map", "0:v", "-map", "1:a?", "-c:v", "libx264", "-preset", "medium",
                         "-pix_fmt", "yuv420p", "-c:a", "copy", "-shortest", str(out)], check=True)
    t3 = time.time()
    shutil.rmtree(dump)
    shutil.rmtree(done)
    return {"frames": len(pngs), "wall_s": round(t3 - t0, 2), "fps": round(len(pngs) / (t3 - t0), 2),
            "dump_s": round(t1 - t0, 2), "colorize_s": round(t2 - t1, 2), "encode_s": round(t3 - t2, 2)}


def warm_overhead(clip: Path, work: Path) -> dict:
    """The same command with `vidcolor services` running (started here, and stopped after, unless
    they already ran); the better of two runs."""
    from vidcolor import services

    was_running = services.running() is not None
    services.start()
    try:
        runs = [run_colorize(clip, work, warm=True) for _ in range(2)]
    finally:
        if not was_running:
            services.stop()
    return min(runs, key=lambda r: r["wall_s"])


def write_doc(report: dict) -> None:
    """The table between the markers of docs/performance.md."""
    begin, end = "<!-- pipeline.json begins -->", "<!-- pipeline.json ends -->"
    m, e, fd = report["model"], report["e2e"], report["framedump"]
    t = report["targets"]
    rows = [
        "| measure | value | target | met |",
        "| --- | --- | --- | --- |",
        f"| model only, frames in memory ({m['render_size'][0]}x{m['render_size'][1]}, batch {m['batch']}, "
        f"{m['threads']} threads, {m['model_runtime']}) | {m['model_fps']} frames/s | "
        f"at least 1.5x the torch fp32 path's {m['model_fps_fp32']} = {t['model_speedup']['target']} | "
        f"{_yes(t['model_speedup']['met'])} ({t['model_speedup']['value']}x) |",
        f"| end to end, `vidcolor colorize`, {e['clip_seconds']:.0f} s clip ({e['frames']} frames) | "
        f"{e['fps']} frames/s ({e['wall_s']} s) | at least 0.85x model only | "
        f"{_yes(t['e2e_vs_model']['met'])} ({t['e2e_vs_model']['value']}x) |",
        f"| frame-dump baseline, same model, first {report['framedump_seconds']:.0f} s ({fd['frames']} frames) | "
        f"{fd['fps']} frames/s | end to end at least 3x this | {_yes(t['e2e_vs_framedump']['met'])} "
        f"({t['e2e_vs_framedump']['value']}x) |",
        f"| fixed overhead: the command on a 2 s clip | {report['overhead_s']} s | at most 12 s | "
        f"{_yes(t['overhead']['met'])} |",
        f"| the same with `vidcolor services` running (warm Ray and Prefect) | {report['overhead_warm_s']} s | | |",
        f"| peak memory, process tree, 1-minute clip | {report['peak_rss_1min_mb']} MB | | |",
        f"| peak memory, process tree, {report['long_seconds'] / 60:.0f}-minute clip | {report['peak_rss_8min_mb']} MB | "
        f"at most 1.15x the 1-minute clip's | {_yes(t['memory_growth']['met'])} ({t['memory_growth']['value']}x) |",
    ]
    rows += ["", "Model only, by runtime and precision (the same chunk; chroma against torch fp32's, int8 ab units):", "",
             "| runtime | frames/s | x torch fp32 | mean / p99 difference |", "| --- | --- | --- | --- |"]
    for name, r in m.get("runtimes", {}).items():
        d = r["ab_difference_to_torch_fp32"]
        rows.append(f"| {name} | {r['fps']} | {r['fps'] / m['model_fps_fp32']:.2f} | {d['mean']} / {d['p99']:g} |")
    table = "\n".join([begin, f"Measured {report['when']} on {report['machine']['cpus']} CPU cores "
                              f"({report['machine']['cpu']}); `benchmarks/results/pipeline.json`.", "", *rows, end])
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    DOC.write_text(head + table + rest.split(end, 1)[1])


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--e2e-seconds", type=float, default=120)
    ap.add_argument("--overhead-seconds", type=float, default=2)
    ap.add_argument("--short-seconds", type=float, default=60)
    ap.add_argument("--long-seconds", type=float, default=480)
    ap.add_argument("--framedump-seconds", type=float, default=30)
    ap.add_argument("--out", default=str(RESULT))
    ap.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        work = Path(tmp)
        clips = {}
        for name, seconds in (("e2e", args.e2e_seconds), ("overhead", args.overhead_seconds),
                              ("short", args.short_seconds), ("long", args.long_seconds)):
            clips[name] = work / f"{name}-{seconds:g}s.mp4"
            make_clip(clips[name], seconds)
            print(f"made {clips[name].name}", file=sys.stderr, flush=True)
        model = model_only(clips["e2e"])
        print(f"model only: {model}", file=sys.stderr, flush=True)
        overhead = run_colorize(clips["overhead"], work)
        print(f"overhead: {overhead}", file=sys.stderr, flush=True)
        overhead_warm = warm_overhead(clips["overhead"], work)
        print(f"overhead, warm services: {overhead_warm}", file=sys.stderr, flush=True)
        e2e = run_colorize(clips["e2e"], work)
        print(f"end to end: {e2e}", file=sys.stderr, flush=True)
        dump = framedump(clips["e2e"], work, args.framedump_seconds)
        print(f"frame dump: {dump}", file=sys.stderr, flush=True)
        short = run_colorize(clips["short"], work)
        print(f"short: {short}", file=sys.stderr, flush=True)
        long = run_colorize(clips["long"], work)
        print(f"long: {long}", file=sys.stderr, flush=True)

    def target(value: float, ok: bool, goal=None) -> dict:
        return {"value": round(value, 3), "met": bool(ok), **({"target": goal} if goal is not None else {})}

    speedup = model["model_fps"] / model["model_fps_fp32"]
    report = {
        "benchmark": "pipeline",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "cpu": cpu_name(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "model_fps": model["model_fps"], "e2e_fps": e2e["fps"], "framedump_fps": dump["fps"],
        "overhead_s": overhead["wall_s"], "overhead_warm_s": overhead_warm["wall_s"],
        "peak_rss_1min_mb": short["peak_rss_mb"],
        "peak_rss_8min_mb": long["peak_rss_mb"],
        "framedump_seconds": args.framedump_seconds, "long_seconds": args.long_seconds,
        "model": model, "e2e": e2e, "overhead": overhead, "overhead_warm": overhead_warm, "framedump": dump, "short": short, "long": long,
        "targets": {
            "e2e_vs_model": target(e2e["fps"] / model["model_fps"], e2e["fps"] >= 0.85 * model["model_fps"]),
            "e2e_vs_framedump": target(e2e["fps"] / dump["fps"], e2e["fps"] >= 3 * dump["fps"]),
            "overhead": target(overhead["wall_s"], overhead["wall_s"] <= 12),
            "memory_growth": target(long["peak_rss_mb"] / short["peak_rss_mb"],
                                    long["peak_rss_mb"] <= 1.15 * short["peak_rss_mb"]),
            "model_speedup": target(speedup, speedup >= 1.5, round(1.5 * model["model_fps_fp32"], 2)),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_doc:
        write_doc(report)
    print(json.dumps({k: report[k] for k in ("model_fps", "e2e_fps", "framedump_fps", "overhead_s",
                                             "peak_rss_1min_mb", "peak_rss_8min_mb", "targets")}, indent=2))


if __name__ == "__main__":
    main()
