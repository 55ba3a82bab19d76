"""Evaluate a colorizer on a colour clip through the real pipeline.

The clip is desaturated with ffmpeg (``hue=s=0``: the luma plane kept as stored, the chroma set to
neutral; losslessly re-encoded, FFV1, so the grey clip is exactly what the colorizer is given), and
the grey clip is colorized by the pipeline (``flows.colorize_film.run_colorize_film``) (losslessly encoded too, so
the figures measure the colorizer, not a codec). Then each frame of the output and of the grey clip
is compared with the original's frame in RGB: PSNR, colourfulness (Hasler and Suesstrunk), and the
realism distance over the frames (Frechet distance of MobileNetV2 pooled features to the originals').
Figures are averaged over frames; the grey clip is the baseline a colorizer must not fall below.

``luma_psnr_db`` (BT.601 luma of the output against the original's) checks the comparison itself:
the pipeline keeps the film's luma, so it is high (> 40 dB) unless frames are misaligned.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vidcolor.errors import BadInputError, RunFailedError
from vidcolor.evaluation.metrics import PSNR_CAP, colourfulness, psnr
from vidcolor.evaluation.realism import realism_distance


def desaturate(original: Path, dest: Path, frames: int | None = None) -> None:
    """Grey copy of a colour clip (first ``frames`` frames), no audio, FFV1 in Matroska."""
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(original)]
    if frames:
        cmd += ["-frames:v", str(int(frames))]
    cmd += ["-an", "-sn", "-dn", "-vf", "hue=s=0,format=yuv420p", "-c:v", "ffv1", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise BadInputError("ffmpeg", "not found: install ffmpeg (Debian package 'ffmpeg')") from None
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise BadInputError(str(original), f"cannot be desaturated by ffmpeg ({msg})")


def rgb_frames(path: Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a film in presentation order (all three films of a comparison are
    converted the same way, so the YUV -> RGB matrix cancels out of the comparison)."""
    from vidcolor.media.luma import open_video

    container, stream = open_video(str(path))
    try:
        for i, frame in enumerate(container.decode(stream)):
            if limit is not None and i >= limit:
                break
            yield frame.to_ndarray(format="rgb24")
    finally:
        container.close()


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def compare_clips(original: Path, grey: Path, colorized: Path, frames: int | None = None) -> dict:
    """Frame-by-frame figures of the colorized and grey clips against the original."""
    from vidcolor.evaluation.images import Classifier

    clf = Classifier(device="cpu")
    per_frame = []
    features = {"grey": [], "ours": [], "original": []}
    for orig, g, ours in zip(rgb_frames(original, frames), rgb_frames(grey, frames), rgb_frames(colorized, frames),
                             strict=True):
        if not (orig.shape == g.shape == ours.shape):
            raise RunFailedError(str(colorized), f"frame size {ours.shape[1]}x{ours.shape[0]} differs from the "
                                                 f"original's {orig.shape[1]}x{orig.shape[0]}")
        per_frame.append({
            "psnr": psnr(ours, orig), "grey_psnr": psnr(g, orig),
            "luma_psnr": psnr(_luma(ours), _luma(orig)),
            "colourfulness": colourfulness(ours), "original_colourfulness": colourfulness(orig),
            "grey_colourfulness": colourfulness(g),
        })
        for key, im in (("grey", g), ("ours", ours), ("original", orig)):
            features[key].append(clf.look(im)[1])
    if not per_frame:
        raise RunFailedError(str(colorized), "no frames to compare")

    def mean(key: str) -> float:
        return float(np.mean([f[key] for f in per_frame]))

    orig_c = mean("original_colourfulness")
    reference = np.stack(features["original"])
    return {
        "frames": len(per_frame),
        "psnr_db": mean("psnr"),
        "grey_psnr_db": mean("grey_psnr"),
        "psnr_over_grey_db": mean("psnr") - mean("grey_psnr"),
        "luma_psnr_db": mean("luma_psnr"),
        "colourfulness": mean("colourfulness"),
        "original_colourfulness": orig_c,
        "grey_colourfulness": mean("grey_colourfulness"),
        "colourfulness_ratio": mean("colourfulness") / orig_c if orig_c > 0 else None,
        "realism_fd": realism_distance(np.stack(features["ours"]), reference),
        "grey_realism_fd": realism_distance(np.stack(features["grey"]), reference),
        "psnr_cap_db": PSNR_CAP,
        "per_frame": per_frame,
    }


def evaluate_video(original: str | Path, colorize_film, chroma=None, execution=None, frames: int | None = None,
                   work_dir: str | Path | None = None, log=print) -> dict:
    """Desaturate ``original``, colorize it through the pipeline with ``chroma`` (ChromaSettings),
    compare. ``colorize_film``: the pipeline's entry, ``flows.colorize_film.run_colorize_film``
    (passed in: the library does not import flows). Temporary films and run state live in
    ``work_dir`` (default: a temporary folder, removed afterwards)."""
    from vidcolor.colorizers import load_colorizer
    from vidcolor.media.probe import probe_video
    from vidcolor.settings import ChromaSettings, EncodeSettings, ExecutionSettings

    original = Path(original)
    info = probe_video(original)  # one clear error line for a missing or unreadable clip
    if frames is not None and frames < 1:
        raise BadInputError("--frames", f"{frames} is not a positive frame count")
    chroma = chroma or ChromaSettings()
    execution = execution or ExecutionSettings()
    model = load_colorizer(chroma.model).identity  # what the figures are of (a weights file's hash)
    with tempfile.TemporaryDirectory(prefix="vidcolor-eval-video-", dir=work_dir) as tmp:
        tmp = Path(tmp)
        grey, out = tmp / "grey.mkv", tmp / "colorized.mkv"
        t0 = time.time()
        desaturate(original, grey, frames)
        log(f"desaturated {original.name} ({time.time() - t0:.1f} s); colorizing")
        t1 = time.time()
        result = colorize_film(str(grey), str(out), chroma, EncodeSettings(codec="ffv1"), execution,
                               str(tmp / "store"))
        colorize_s = time.time() - t1
        log(f"colorized {result['frames']} frames ({colorize_s:.1f} s); comparing")
        figures = compare_clips(original, grey, out, frames)
    return {
        "clip": original.name, "width": info.width, "height": info.height, "frame_rate": info.frame_rate,
        "model": model, "render_size": chroma.render_size,
        "colorize_wall_s": colorize_s, "wall_s": time.time() - t0, **figures,
    }


def write_report(report: dict, path: str | Path) -> None:
    from vidcolor.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(report, indent=1) + "\n")


def format_summary(report: dict) -> str:
    ratio = report["colourfulness_ratio"]
    return (f"{report['clip']}: {report['frames']} frames, PSNR {report['psnr_db']:.2f} dB "
            f"(grey {report['grey_psnr_db']:.2f}, {report['psnr_over_grey_db']:+.2f} dB), colourfulness "
            f"{report['colourfulness']:.1f} / original {report['original_colourfulness']:.1f} "
            f"(ratio {ratio:.3f}), realism {report['realism_fd']:.1f} (grey {report['grey_realism_fd']:.1f})"
            if ratio is not None else f"{report['clip']}: {report['frames']} frames, original has no colour")
