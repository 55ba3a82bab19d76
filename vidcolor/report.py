"""Temporal quality of a colorized film, as numbers and plots (``vidcolor report``), a side-by-side
preview (``vidcolor preview``), and the cheap summary every run writes into run.json.

A target is a run (its id in the store, or its folder ``<store>/runs/<id>``) or an output video.
A run brings its plan: the scene cuts and the chunk joins, where seams would be. A bare video gets
its cuts from the same detector the split uses.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidcolor.errors import BadInputError
from vidcolor.evaluation.temporal import (CdcAccumulator, VideoMeasures, channel_histograms, chroma_change,
                                          jump_ratios, measure_frames, per_scene, plan_joins, seam_scores, summarize,
                                          within_scene_changes)
from vidcolor.plan import Chunk, Plan, chunk_from_doc
from vidcolor.state import RunLayout, unpack_array
from vidcolor.store import ObjectStore, default_store_uri, is_s3_uri, open_store

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".nut")
SHEET_FRAMES = 6


# --- the cheap per-run summary (render size, from the store, no decode) ---------------------------

def _chunks(plan: Plan | dict) -> list[Chunk]:
    if isinstance(plan, Plan):
        return list(plan.chunks)
    return [chunk_from_doc(d) for d in plan["chunks"]]


def run_temporal_summary(store: ObjectStore, layout: RunLayout, plan: Plan | dict, ramp: str = "linear",
                         scale: float = 0.5) -> dict:
    """CDC, chroma change and seam scores of a finished run, from its stored render-size chroma
    (after overlap blending and the stabiliser's scene pass, as stitch takes it; other ``ramp``
    shapes re-blend the chunks' own chroma) and luma at ``scale`` of the render size: no video
    is decoded and no reference is needed. One chunk's chroma in memory at a time."""
    from vidcolor.stages.colorize import load_chunk_source
    from vidcolor.stages.stitch import blended_chroma
    doc = plan.to_dict() if isinstance(plan, Plan) else plan  # a typed plan, or plan.json as read
    chunks = _chunks(plan)
    full_range = bool(doc["video"].get("full_range", False))
    scene_starts = list(doc["scene_starts"])
    whole, in_scenes = CdcAccumulator(), CdcAccumulator(scene_starts=scene_starts)  # constant memory
    changes = []
    prev_ab = None
    for c in chunks:
        stable = layout.chunk(c.index, "stable.npz")
        if ramp == "linear" and store.exists(stable):  # what the stabiliser's scene pass gave the stitch
            ab = unpack_array(store.get_bytes(stable), "ab")  # int8: float32 one frame at a time
        else:
            ab = blended_chroma(store, layout, chunks, int(doc["settings"]["overlap_frames"]), c.index, ramp,
                                dtype=np.float16)
        luma = load_chunk_source(store, layout, c)[c.core_start - c.ext_start : c.core_end - c.ext_start]
        for k in range(c.core_frames):
            y, a = luma[k], ab[k].astype(np.float32)
            if scale != 1:
                size = (max(8, round(y.shape[1] * scale)), max(8, round(y.shape[0] * scale)))
                y = cv2.resize(y, size, interpolation=cv2.INTER_AREA)
                a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
            hist = channel_histograms(_lab_to_rgb8(y, a, full_range))
            whole.add(hist)
            in_scenes.add(hist)
            changes.append(float("nan") if prev_ab is None else chroma_change(prev_ab, a))
            prev_ab = a
    series = np.asarray(changes)
    seams = seam_scores(series, scene_starts, plan_joins(chunks))
    inside = within_scene_changes(series, scene_starts)
    ratios = jump_ratios(series, scene_starts)
    finite = np.isfinite(ratios)
    return {
        "measured_at": f"{scale:g} x render size, from the stored chroma (no reference)",
        "cdc": whole.value(),
        "cdc_in_scenes": in_scenes.value(),
        "median_chroma_change": float(np.median(inside)) if inside.size else None,
        "max_seam_score": max(seams.values()) if seams else None,
        "seams": {str(k): round(v, 4) for k, v in seams.items()},
        "largest_jump": ({"frame": int(np.nanargmax(np.where(finite, ratios, np.nan))),
                          "ratio": float(np.nanmax(np.where(finite, ratios, np.nan)))} if finite.any() else None),
    }


def _lab_to_rgb8(y: np.ndarray, ab: np.ndarray, full_range: bool) -> np.ndarray:
    from vidcolor.color import luma_to_lightness

    lab = np.concatenate([luma_to_lightness(y, full_range=full_range)[..., None], ab.astype(np.float32)], -1)
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


# --- targets --------------------------------------------------------------------------------------

@dataclass
class Target:
    video: str  # the colorized video
    source: str | None = None  # the grey input, when known and local
    run_id: str | None = None
    plan: dict | None = None
    run: dict | None = None


def resolve_target(target: str, store_uri: str | None = None) -> Target:
    """A run id, a run folder or a video file -> what to measure. BadInputError when none fits."""
    p = Path(target)
    if p.is_file():
        if p.suffix.lower() not in VIDEO_SUFFIXES:
            raise BadInputError(target, f"is not a video file ({', '.join(VIDEO_SUFFIXES)}) nor a run")
        return Target(video=str(p))
    if p.is_dir():
        if not (p / "plan.json").is_file():
            raise BadInputError(target, "is a folder but not a run folder (no plan.json)")
        plan = json.loads((p / "plan.json").read_text())
        run = json.loads((p / "run.json").read_text()) if (p / "run.json").is_file() else {}
        return _target_of_run(target, p.name, plan, run)
    uri = store_uri or default_store_uri()
    store = open_store(uri)
    layout = RunLayout(target)
    if "/" in target or not store.exists(layout.plan):
        raise BadInputError(target, f"is neither a video file nor a run folder nor a run id in the store {uri}")
    run = store.get_json(layout.run_json) if store.exists(layout.run_json) else {}
    return _target_of_run(target, target, store.get_json(layout.plan), run)


def _target_of_run(name: str, run_id: str, plan: dict, run: dict) -> Target:
    done = [i for i in run.get("invocations", []) if i.get("status") == "succeeded" and i.get("output")]
    if not done:
        raise BadInputError(name, "this run has not finished: no colorized output to measure")
    output, source = done[-1]["output"], done[-1].get("input")
    if is_s3_uri(output) or not Path(output).is_file():
        raise BadInputError(name, f"the run's output {output} is not a local file (measure a downloaded copy)")
    if source and (is_s3_uri(source) or not Path(source).is_file()):
        source = None
    return Target(video=output, source=source, run_id=run_id, plan=plan, run=run)


def detect_cuts(video: str) -> list[int]:
    """Scene starts of a video by the split's own detector (for a bare video without a plan)."""
    from vidcolor.media.luma import iter_luma
    from vidcolor.media.probe import probe_video
    from vidcolor.settings import ChromaSettings
    from vidcolor.stages.split import DETECT_WIDTH, SceneCutDetector

    info = probe_video(video)
    defaults = ChromaSettings()
    detector = SceneCutDetector(info.fps, defaults.scene_threshold, defaults.min_scene_frames)
    dw = min(DETECT_WIDTH, info.width)
    dh = max(2, int(round(info.height * dw / info.width)))
    cuts, last = [], -1
    for frame in iter_luma(video):
        last = frame.index
        cuts += detector.feed(frame.index, cv2.resize(frame.y, (dw, dh), interpolation=cv2.INTER_AREA))
    cuts += detector.finish(max(last, 0))
    return [0] + sorted(c for c in set(cuts) if 0 < c <= last)


# --- measuring and writing a report ---------------------------------------------------------------

def measure_target(target: Target, original: str | None = None, measure_short_side: int | None = 360,
                   sheet_frames: int = SHEET_FRAMES) -> tuple[VideoMeasures, dict, list[dict], list]:
    """(per-frame measures, report dict, per-scene rows, contact-sheet cells)."""
    from vidcolor.media.luma import iter_rgb
    from vidcolor.media.probe import probe_video

    if original is not None and not Path(original).is_file():
        raise BadInputError(original, "no such file (--original)")
    scene_starts = target.plan["scene_starts"] if target.plan else detect_cuts(target.video)
    joins = plan_joins(_chunks(target.plan)) if target.plan else []
    total = target.plan["total_frames"] if target.plan else probe_video(target.video).frame_count_header
    picks = set(np.linspace(0, max(0, (total or 1) - 1), sheet_frames).round().astype(int).tolist()) if total else {0}
    cells: dict[int, list] = {}

    def tap(frames, slot):
        for k, f in enumerate(frames):
            if k in picks:
                cells.setdefault(k, [None, None, None])[slot] = _thumb(f)
            yield f

    orig_frames = tap(iter_rgb(original), 2) if original else None
    m = measure_frames(tap(iter_rgb(target.video), 1), orig_frames, scene_starts=scene_starts,
                       measure_short_side=measure_short_side)
    if original and len(m.original_histograms) != m.frames:
        raise BadInputError(original, f"has {len(m.original_histograms)} frames, the colorized video {m.frames}")
    summary = summarize(m, scene_starts, joins)
    scenes = per_scene(m, scene_starts)
    report = {
        "target": {"video": target.video, "run_id": target.run_id, "source": target.source, "original": original},
        "chunk_joins": joins,
        "summary": summary,
        "scenes": scenes,
        "series": {"chroma_change": _rounded(m.chroma_change), "original_chroma_change": _rounded(m.original_chroma_change),
                   "warp_error": _rounded(m.warp_error, 6),
                   "original_warp_error": _rounded(m.original_warp_error, 6)},
        "notes": {
            "cdc": "TCVC's CDC: JS divergence of per-channel RGB histograms at d = 1, 2, 4 (whole clip, full size)",
            "warp_error": f"Lai et al.: MSE of RGB in [0, 1] after flow warping, visible pixels, short side {measure_short_side}",
            "seams": "chroma change at a non-cut chunk join over the median change inside scenes (1 = ordinary)",
        },
    }
    sheet = []
    for k in sorted(cells):
        grey, colour, orig = cells[k]
        if colour is None:
            continue
        grey = cv2.cvtColor(cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)  # the output's own luma
        sheet.append(tuple(x for x in (grey, colour, orig) if x is not None))
    return m, report, scenes, sheet


def _thumb(rgb: np.ndarray, height: int = 180) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA) if h > height else rgb.copy()


def _rounded(xs, nd: int = 4) -> list:
    return [None if not np.isfinite(x) else round(float(x), nd) for x in xs]


def write_report(target: Target, out_dir: str | os.PathLike, original: str | None = None,
                 measure_short_side: int | None = 360) -> dict:
    """report.json, timeline.png, scenes.png and contact_sheet.png in ``out_dir``; returns the report."""
    from vidcolor.evaluation.images import contact_sheet

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m, report, scenes, sheet = measure_target(target, original, measure_short_side)
    if target.run_id and target.run:
        report["run_summary"] = target.run.get("temporal")
    plot_timeline(report, out / "timeline.png")
    plot_scenes(scenes, out / "scenes.png")
    if sheet:
        contact_sheet(sheet, out / "contact_sheet.png", thumb=120, per_row=2)
    report["files"] = sorted(p.name for p in out.glob("*.png"))
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(out / "report.json")
    return report


def plot_timeline(report: dict, path: Path, title: str | None = None) -> None:
    """Per-frame chroma change (and the original's warp-free reference when given), cuts and joins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["summary"]
    change = np.array([np.nan if v is None else v for v in report["series"]["chroma_change"]], dtype=float)
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=90)
    ax.plot(np.arange(len(change)), change, lw=1, color="tab:blue", label="chroma change (mean |delta ab|)")
    orig = report["series"].get("original_chroma_change")
    if orig:
        ax.plot(np.arange(len(orig)), np.array([np.nan if v is None else v for v in orig], dtype=float), lw=0.8,
                color="tab:green", alpha=0.7, label="colour original")
    if s.get("median_chroma_change"):
        ax.axhline(s["median_chroma_change"], color="tab:blue", ls=":", lw=0.8, label="median inside scenes")
    for i, c in enumerate(s["scene_starts"][1:]):
        ax.axvline(c, color="tab:red", lw=1, label="cut" if i == 0 else None)
    for i, j in enumerate(report["chunk_joins"]):
        score = s["seams"].get(str(j))
        ax.axvline(j, color="0.5", ls="--", lw=0.8, label="chunk join" if i == 0 else None)
        if score is not None:
            ax.annotate(f"{score:.1f}", (j, np.nanmax(change) if np.isfinite(change).any() else 1), fontsize=7,
                        ha="center", va="bottom", color="0.3")
    ax.set_xlabel("frame")
    ax.set_ylabel("ab units")
    ax.set_title(title or f"{Path(report['target']['video']).name}: chroma change per frame (join labels: seam score)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_scenes(scenes: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(scenes))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3), dpi=90)
    for ax, key, label in ((axes[0], "cdc", "CDC"), (axes[1], "warp_error", "warp error")):
        ours = [r.get(key) or 0 for r in scenes]
        has_orig = any(r.get(f"original_{key}") is not None for r in scenes)
        wbar = 0.4 if has_orig else 0.8
        ax.bar(x - (wbar / 2 if has_orig else 0), ours, wbar, label="colorized")
        if has_orig:
            ax.bar(x + wbar / 2, [r.get(f"original_{key}") or 0 for r in scenes], wbar, label="colour original")
        ax.set_xticks(x, [f"{r['start']}-{r['end'] - 1}" for r in scenes], fontsize=7, rotation=45 if len(scenes) > 8 else 0)
        ax.set_title(f"{label} per scene (frames)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --- preview --------------------------------------------------------------------------------------

def preview_pair(target: str, store_uri: str | None = None) -> tuple[str, str]:
    """(grey source, colorized output) of a run id / run folder, or of an input film that a
    finished run in the store colorized (the newest)."""
    p = Path(target)
    if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
        found = _run_of_input(p, store_uri)
        if found is None:
            raise BadInputError(target, f"no finished run in the store {store_uri or default_store_uri()} colorized this film")
        return str(p), found
    t = resolve_target(target, store_uri)
    if not t.source:
        raise BadInputError(target, "the run's input is not a local file; cannot show it beside the colour")
    return t.source, t.video


def _run_of_input(path: Path, store_uri: str | None) -> str | None:
    store = open_store(store_uri or default_store_uri())
    best = None
    for key in store.list("runs/"):
        if not key.endswith("/run.json"):
            continue
        for inv in store.get_json(key).get("invocations", []):
            inp, out = inv.get("input"), inv.get("output")
            if (inv.get("status") == "succeeded" and inp and out and not is_s3_uri(inp) and Path(out).is_file()
                    and Path(inp).resolve() == path.resolve()):
                if best is None or inv.get("finished_at", 0) > best[0]:
                    best = (inv.get("finished_at", 0), out)
    return best[1] if best else None


def make_preview(grey: str, colour: str, output: str, height: int = 360) -> None:
    """Side by side: grey | colour, each ``height`` px high, with the grey film's audio (if any).
    Written to a temp name beside ``output``, then renamed."""
    from vidcolor.media.probe import probe_video

    out = Path(output)
    if out.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise BadInputError(output, "the preview must be .mp4, .mkv or .mov")
    if not out.parent.resolve().is_dir():
        raise BadInputError(output, f"output folder {str(out.parent)!r} does not exist")
    info = probe_video(grey)
    h = min(height, info.height) // 2 * 2
    tmp = out.with_name(f".{out.name}.vidcolor-partial-{os.getpid()}{out.suffix}")
    graph = (f"[0:v]scale=-2:{h},format=gray,format=yuv420p[g];[1:v]scale=-2:{h},format=yuv420p[c];"
             "[g][c]hstack=inputs=2[v]")
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", grey, "-i", colour,
            "-filter_complex", graph, "-map", "[v]", "-map", "0:a?", "-c:v", "libx264", "-crf", "20",
            "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(tmp)]
    try:
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise BadInputError(output, f"ffmpeg could not make the preview ({(r.stderr.strip().splitlines() or ['?'])[-1][:200]})")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
