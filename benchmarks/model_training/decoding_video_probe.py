"""Decoding settings of one model on frames of the shared colour clips (report only: nothing is
chosen here; the settings come from a calibration on val/).

Every ``--stride``-th frame of each clip is desaturated (Lab L kept), the model's bins logits are
computed once (image mode, render size 256), and each decoding setting is applied to them: PSNR
against the original frame (full size, chroma upsampled as ``colorize_rgb_image`` does), the grey
baseline's PSNR, and colourfulness against the original's. A quick view of how a decoding moves
each clip; the pipeline figures come from ``vidcolor eval video`` (benchmarks/eval_video_clips.py).

    .venv/bin/python benchmarks/model_training/decoding_video_probe.py ../shared/data/videos \\
        --weights W.safetensors --calibration W.calibration.json --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

CLIPS = ("cockatoo.mp4", "bikes.mp4", "vid4_calendar.mp4", "vid4_city.mp4", "vid4_foliage.mp4", "vid4_walk.mp4")


def main() -> None:
    import cv2
    import torch

    from vidcolor.color import rgb_to_lab
    from vidcolor.evaluation.metrics import colourfulness, psnr
    from vidcolor.evaluation.video import rgb_frames
    from vidcolor.models.gan_colorizer import lab_to_rgb_in_gamut, read_generator
    from vidcolor.render import render_size

    ap = argparse.ArgumentParser()
    ap.add_argument("videos", type=Path)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--calibration", type=Path, required=True, help="a calibration.json: its named rows are probed")
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    gen, _ = read_generator(args.weights)
    cal = json.loads(args.calibration.read_text())
    settings = {name: cal[name] for name in ("reference", "best", "best_by_score_alone", "best_without_pull")
                if name in cal}
    strongest = max((r for r in cal["rows"] if r["uncertainty_ref"] > 0),
                    key=lambda r: r["val_worst_decile_gain_db"])  # the pull that harms val photos least
    settings["least_harm_on_val"] = strongest

    def to_rgb(L, ab):
        return np.clip(np.rint(lab_to_rgb_in_gamut(L, ab) * 255), 0, 255).astype(np.uint8)

    result = {"weights": args.weights.name, "stride": args.stride,
              "settings": {k: {f: v[f] for f in ("temperature", "uncertainty_ref", "uncertainty_power", "gain")}
                           for k, v in settings.items()}, "clips": {}}
    for clip in CLIPS:
        acc = {name: {"psnr": [], "c": []} for name in settings}
        grey_psnr, orig_c = [], []
        for i, frame in enumerate(rgb_frames(args.videos / clip)):
            if i % args.stride:
                continue
            h, w = frame.shape[:2]
            lab = rgb_to_lab(frame.astype(np.float32) / 255)
            L = lab[..., 0]
            rw, rh = render_size(w, h, 256, 32, upscale=True)
            small = torch.from_numpy(cv2.resize(L, (rw, rh), interpolation=cv2.INTER_AREA))[None, None]
            with torch.no_grad():
                _, logits = gen(small, radius=0, return_logits=True)
                for name, s in settings.items():
                    ab = gen.decode_logits(logits, s["temperature"], s["prior_correction"],
                                           uncertainty=(s["uncertainty_ref"], s["uncertainty_power"]))
                    ab = gen.upsample_chroma(ab, small)[0].permute(1, 2, 0).numpy() * s["gain"]
                    out = to_rgb(L, cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR))
                    acc[name]["psnr"].append(psnr(out, frame))
                    acc[name]["c"].append(colourfulness(out))
            grey_psnr.append(psnr(to_rgb(L, np.zeros((h, w, 2), np.float32)), frame))
            orig_c.append(colourfulness(frame))
        g, oc = float(np.mean(grey_psnr)), float(np.mean(orig_c))
        result["clips"][clip] = {"frames": len(grey_psnr), "grey_psnr_db": g, "original_colourfulness": oc, **{
            name: {"psnr_over_grey_db": float(np.mean(a["psnr"])) - g, "colourfulness_ratio": float(np.mean(a["c"])) / oc}
            for name, a in acc.items()}}
        print(clip, json.dumps(result["clips"][clip]), flush=True)
    result["mean"] = {name: {k: float(np.mean([c[name][k] for c in result["clips"].values()]))
                             for k in ("psnr_over_grey_db", "colourfulness_ratio")} for name in settings}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["mean"], indent=1))


if __name__ == "__main__":
    main()
