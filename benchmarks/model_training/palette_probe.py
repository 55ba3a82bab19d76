"""Is the held-out gap the image's palette, and can the training photos supply it?

Decodes the shipped model's bins head on the selection set with an image-level prior added to its
logits: logits + alpha * (log h - log prior), h = 0.7 x (a histogram over the ab bins) + 0.3 x the
training prior. The histogram comes from:
  oracle       the photo's own original (an upper bound: what a perfect palette would buy)
  knn-gen      the k fit photos nearest in the generator's pooled 1,280-d features of the grey input
  knn-coral    the k fit photos nearest in the Coral MobileNetV2's logits on the grey input
Everything else is the shipped decoding (T 0.5, guided upsampling 0.01, gain 1).

    python benchmarks/model_training/palette_probe.py /tmp/vc_data ../shared/data/images/manifest.tsv OUT.json
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab
from vidcolor.evaluation.images import Classifier, grey_of, read_rgb
from vidcolor.media.still import IMAGE_SUFFIXES
from vidcolor.evaluation.metrics import colourfulness, psnr
from vidcolor.models.gan_colorizer import DEFAULT_WEIGHTS, lab_to_rgb_in_gamut, read_generator
from vidcolor.render import render_size
from vidcolor.models.generator import annealed_mean, guided_upsample
from vidcolor.models.mobilenet_v2 import preprocess_uint8

SMOOTH = 0.3


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class Probe:
    def __init__(self):
        self.gen, _ = read_generator(DEFAULT_WEIGHTS)
        self.centres = self.gen.bin_centres.float()
        self.prior = torch.softmax(self.gen.log_prior.float(), 0)
        self.clf = Classifier()

    def forward(self, path: Path) -> dict:
        rgb = read_rgb(path)
        lab = rgb_to_lab(rgb.astype(np.float32) / 255)
        h, w = rgb.shape[:2]
        rw, rh = render_size(w, h, 256, 32, upscale=True)
        small = cv2.resize(lab[..., 0], (rw, rh), interpolation=cv2.INTER_AREA) if (rh, rw) != (h, w) else lab[..., 0]
        x = torch.from_numpy(np.ascontiguousarray(small))[None, None]
        with torch.inference_mode():
            feats, pooled = self.gen.encode(x)
            _, logits = self.gen(x, return_logits=True)
        ab = cv2.resize(lab[..., 1:], (logits.shape[-1], logits.shape[-2]), interpolation=cv2.INTER_AREA).reshape(-1, 2)
        nearest = ((torch.from_numpy(ab)[:, None] - self.centres[None]) ** 2).sum(-1).argmin(1)
        hist = torch.bincount(nearest, minlength=len(self.centres)).float() / len(nearest)
        return {"name": path.name, "pooled": pooled[0], "coral": self.coral_logits(rgb), "hist": hist,
                "logits": logits[0].half(), "small": small, "rgb": rgb}

    def coral_logits(self, rgb: np.ndarray) -> torch.Tensor:
        grey = grey_of(rgb)
        h, w = grey.shape[:2]
        s = 256 / min(h, w)
        img = cv2.resize(grey, (max(224, round(w * s)), max(224, round(h * s))), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
        y, x = (h - 224) // 2, (w - 224) // 2
        with torch.inference_mode():
            return self.clf.net(preprocess_uint8(torch.from_numpy(np.ascontiguousarray(img[y:y + 224, x:x + 224])[None])))[0]

    def decode(self, item: dict, hist: torch.Tensor | None, alpha: float) -> tuple[float, float]:
        logits = item["logits"].float()[None]
        if hist is not None and alpha:
            h = (1 - SMOOTH) * hist + SMOOTH * self.prior
            logits = logits + alpha * (h.log() - self.prior.log())[None, :, None, None]
        small, rgb = item["small"], item["rgb"]
        ab = annealed_mean(logits, self.centres, 0.5)
        ab = guided_upsample(torch.from_numpy(np.ascontiguousarray(small))[None, None] / 100, ab, 0.01)[0]
        ab = ab.permute(1, 2, 0).numpy()
        if ab.shape[:2] != rgb.shape[:2]:
            ab = cv2.resize(ab, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        L = rgb_to_lab(rgb.astype(np.float32) / 255)[..., 0]
        out = np.clip(np.rint(lab_to_rgb_in_gamut(L, ab) * 255), 0, 255).astype(np.uint8)
        return psnr(out, rgb) - psnr(grey_of(rgb), rgb), colourfulness(out)


def main(split_dir: str, manifest: str, out_json: str) -> None:
    torch.set_num_threads(2)
    t0 = time.time()
    probe = Probe()
    with open(manifest, newline="") as f:
        train_stems = {Path(r["file"]).stem for r in csv.DictReader(f, delimiter="\t") if r["split"] == "train"}
    fit = []
    for p in files(Path(split_dir) / "fit"):
        item = probe.forward(p)
        fit.append({k: item[k] for k in ("pooled", "coral", "hist")})
    fit_gen = F.normalize(torch.stack([i["pooled"] for i in fit]), dim=1)
    fit_coral = F.normalize(torch.stack([i["coral"] for i in fit]), dim=1)
    fit_hist = torch.stack([i["hist"] for i in fit])
    select = [probe.forward(p) for p in files(Path(split_dir) / "select")]
    held_out_detection = np.array([Path(i["name"]).stem in train_stems for i in select])
    originals = np.mean([colourfulness(i["rgb"]) for i in select])

    def knn(item, key, k):
        table = fit_gen if key == "pooled" else fit_coral
        nearest = (table @ F.normalize(item[key], dim=0)).topk(k).indices
        return fit_hist[nearest].mean(0)

    variants = [("shipped decoding", None, 0, 0.0)]
    variants += [("oracle", "oracle", 0, a) for a in (0.5, 1.0)]
    variants += [(f"knn-gen k={k}", "pooled", k, a) for k in (1, 5, 20) for a in (0.3, 0.6, 1.0)]
    variants += [(f"knn-coral k={k}", "coral", k, a) for k, a in ((1, 0.3), (3, 0.3), (3, 0.6), (8, 0.5))]
    rows = []
    for name, source, k, alpha in variants:
        gains, colour = [], []
        for item in select:
            hist = None if source is None else item["hist"] if source == "oracle" else knn(item, source, k)
            g, c = probe.decode(item, hist, alpha)
            gains.append(g)
            colour.append(c)
        gains = np.array(gains)
        rows.append({"variant": name, "alpha": alpha, "psnr_gain_db": round(float(gains.mean()), 3),
                     "colourfulness_ratio": round(float(np.mean(colour) / originals), 3),
                     "gain_held_out_detection_db": round(float(gains[held_out_detection].mean()), 3),
                     "gain_val_db": round(float(gains[~held_out_detection].mean()), 3)})
        print(rows[-1], flush=True)
    result = {"model": str(DEFAULT_WEIGHTS.name), "fit_photos": len(fit), "select_photos": len(select),
              "held_out_detection_photos": int(held_out_detection.sum()), "smoothing": SMOOTH,
              "wall_s": round(time.time() - t0, 1), "rows": rows}
    Path(out_json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
