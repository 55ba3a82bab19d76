"""Evaluate a colorizer on a folder of colour photos.

Each photo is desaturated (only its Lab L is kept), colorized, and compared with the original:
PSNR and SSIM on RGB, colourfulness (Hasler and Suesstrunk), the colourfulness ratio to the
originals, MobileNetV2 top-1 accuracy on the result, and realism: the Frechet distance between the MobileNetV2
pooled features of the colorized images and of the originals (``vidcolor.evaluation.realism``, FID's
recipe on the shipped classifier). Two reference rows always come with it on
the same images: the grey baseline (a = b = 0) and the originals.

Top-1 labels come from WordNet ids in the file names (``n01443537_...``): class index = position in
the sorted list of the 1,000 ILSVRC-2012 ids (shipped as ``vidcolor/weights/imagenet_wnids.json``)
plus one (index 0 = background). Images without such an id (or with an id outside the 1,000) are
left out of top-1, and the count used is reported.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

from vidcolor.atomic import write_text_atomic
from vidcolor.evaluation import targets as targets_
from vidcolor.media.still import list_images, read_image_rgb, write_image_rgb
from vidcolor.color import lab_to_rgb, rgb_to_lab
from vidcolor.evaluation.metrics import PSNR_CAP, colourfulness, psnr, ssim
from vidcolor.evaluation.realism import realism_distance

WNIDS_PATH = Path(__file__).resolve().parent.parent / "weights" / "imagenet_wnids.json"
_WNID = re.compile(r"^(n\d{8})")


def load_wnids() -> list[str]:
    return json.loads(WNIDS_PATH.read_text())["wnids"]


def class_index(name: str, wnid_index: dict[str, int]) -> int | None:
    m = _WNID.match(name)
    if not m or m.group(1) not in wnid_index:
        return None
    return wnid_index[m.group(1)] + 1


read_rgb = read_image_rgb  # ValueError naming the file when it is not an image


def grey_of(rgb: np.ndarray) -> np.ndarray:
    lab = rgb_to_lab(rgb.astype(np.float32) / 255.0)
    lab[..., 1:] = 0
    return np.clip(np.rint(lab_to_rgb(lab) * 255), 0, 255).astype(np.uint8)


class Classifier:
    """MobileNetV2 on a 224 centre crop (short side resized to 256), batch of one: top-1 class and
    the 1,280-d pooled features (for the realism distance)."""

    def __init__(self, device: str = "cpu"):
        import torch

        from vidcolor.models.mobilenet_v2 import load_mobilenet_v2

        self.torch = torch
        self.net = load_mobilenet_v2(device=device)
        self.device = device

    def top1(self, rgb: np.ndarray) -> int:
        return self.look(rgb)[0]

    def look(self, rgb: np.ndarray) -> tuple[int, np.ndarray]:
        """(top-1 class index, pooled features (1280,) float32) of one RGB uint8 image."""
        import cv2

        from vidcolor.models.mobilenet_v2 import preprocess_uint8

        h, w = rgb.shape[:2]
        s = 256 / min(h, w)
        img = cv2.resize(rgb, (max(224, round(w * s)), max(224, round(h * s))), interpolation=cv2.INTER_AREA) \
            if abs(s - 1) > 1e-6 else rgb
        h, w = img.shape[:2]
        y, x = (h - 224) // 2, (w - 224) // 2
        crop = np.ascontiguousarray(img[y:y + 224, x:x + 224])
        with self.torch.inference_mode():
            pooled, logits = self.net.pooled_and_logits(preprocess_uint8(self.torch.from_numpy(crop[None]).to(self.device)))
        return int(logits.argmax(1)[0]), pooled[0].float().cpu().numpy()


def contact_sheet(triplets: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path, thumb: int = 128,
                  per_row: int | None = None, caption: list[str] | None = None, max_width: int = 2100) -> None:
    """PNG grid; each cell is grey | ours | original of one image, ``thumb`` px high, ``per_row``
    cells a row (default: as many as fit in ``max_width``, so wide photos take more rows);
    ``caption`` lines are written under the grid."""
    import cv2

    cells = []
    for trip in triplets:
        ims = []
        for im in trip:
            h, w = im.shape[:2]
            tw = max(1, round(w * thumb / h))
            ims.append(cv2.resize(im, (tw, thumb), interpolation=cv2.INTER_AREA))
        cell = np.concatenate([np.pad(i, ((0, 0), (0, 2), (0, 0)), constant_values=255) for i in ims], axis=1)
        cells.append(np.pad(cell, ((0, 6), (0, 8), (0, 0)), constant_values=255))
    width = max(c.shape[1] for c in cells)
    per_row = per_row or max(1, min(4, max_width // width))
    cells = [np.pad(c, ((0, 0), (0, width - c.shape[1]), (0, 0)), constant_values=255) for c in cells]
    rows = []
    for i in range(0, len(cells), per_row):
        row = cells[i:i + per_row]
        row += [np.full_like(cells[0], 255)] * (per_row - len(row))
        rows.append(np.concatenate(row, axis=1))
    sheet = np.concatenate(rows, axis=0)
    if caption:
        line_h = 18
        band = np.full((line_h * len(caption) + 8, sheet.shape[1], 3), 255, np.uint8)
        for i, line in enumerate(caption):
            cv2.putText(band, line, (6, line_h * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        sheet = np.concatenate([sheet, band], axis=0)
    write_image_rgb(path, sheet)


def summarize(rows: list[dict], key: str, n_top1: int) -> dict:
    ps = [r[f"{key}_psnr"] for r in rows]
    out = {
        "psnr": float(np.mean(ps)),
        "ssim": float(np.mean([r[f"{key}_ssim"] for r in rows])),
        "colourfulness": float(np.mean([r[f"{key}_colourfulness"] for r in rows])),
    }
    correct = [r[f"{key}_top1_correct"] for r in rows if r["class_index"] is not None]
    out["top1"] = float(np.mean(correct)) if n_top1 else None
    return out


def evaluate_images(folder: str | Path, colorizer, out_dir: str | Path, render_size: int = 256,
                    limit: int | None = None, sheet_count: int = 48, device: str = "cpu", log=print,
                    sheet_thumb: int = 128) -> dict:
    from vidcolor.models.gan_colorizer import colorize_rgb_image

    folder, out_dir = Path(folder), Path(out_dir)
    files = list_images(folder)
    if limit:
        files = files[:limit]
    if not files:
        raise ValueError(f"{folder}: no images")
    out_dir.mkdir(parents=True, exist_ok=True)
    wnids = load_wnids()
    wnid_index = {w: i for i, w in enumerate(wnids)}
    clf = Classifier(device="cpu")
    rows, triplets = [], []
    features = {"grey": [], "ours": [], "original": []}
    t0 = time.time()
    for i, p in enumerate(files):
        orig = read_rgb(p)
        grey = grey_of(orig)
        ours = colorize_rgb_image(colorizer, orig, render_size)
        cls = class_index(p.name, wnid_index)
        row = {"file": p.name, "class_index": cls}
        for key, im in (("grey", grey), ("ours", ours), ("original", orig)):
            row[f"{key}_psnr"] = psnr(im, orig)
            row[f"{key}_ssim"] = ssim(im, orig)
            row[f"{key}_colourfulness"] = colourfulness(im)
            top1, feats = clf.look(im)
            row[f"{key}_top1_correct"] = (top1 == cls) if cls is not None else None
            features[key].append(feats)
        rows.append(row)
        if len(triplets) < sheet_count:
            triplets.append((grey, ours, orig))
        if (i + 1) % 50 == 0:
            log(f"{i + 1}/{len(files)} images, {time.time() - t0:.0f} s")
    n_top1 = sum(r["class_index"] is not None for r in rows)
    table = {key: summarize(rows, key, n_top1) for key in ("grey", "ours", "original")}
    orig_c = table["original"]["colourfulness"]
    for key in table:
        table[key]["colourfulness_ratio"] = table[key]["colourfulness"] / orig_c if orig_c > 0 else None
        table[key]["realism_fd"] = realism_distance(np.stack(features[key]), np.stack(features["original"]))
    g, o, r = table["grey"], table["ours"], table["original"]
    targets = {
        "psnr_above_grey_db": o["psnr"] - g["psnr"],
        "psnr_target_met": o["psnr"] >= g["psnr"] + targets_.PSNR_GAIN_DB,
        "colourfulness_ratio_target_met": (o["colourfulness_ratio"] or 0) >= targets_.COLOURFULNESS_RATIO,
        "realism_fd_vs_grey": o["realism_fd"] / g["realism_fd"] if g["realism_fd"] > 0 else None,
        "realism_target_met": o["realism_fd"] <= targets_.REALISM_SHARE * g["realism_fd"],
    }
    if n_top1:
        halfway = g["top1"] + targets_.TOP1_SHARE * (r["top1"] - g["top1"])
        targets.update({"top1_halfway": halfway, "top1_target_met": o["top1"] >= halfway})
    report = {
        "folder": str(folder), "images": len(rows), "images_with_class": n_top1,
        "model": getattr(colorizer, "identity", str(colorizer)), "runtime": getattr(colorizer, "runtime", ""),
        "render_size": render_size,
        "psnr_cap_db": PSNR_CAP, "wall_s": time.time() - t0,
        "table": table, "targets": targets, "per_image": rows,
    }
    write_text_atomic(out_dir / "report.json", json.dumps(report, indent=1))
    contact_sheet(triplets, out_dir / "contact_sheet.png", thumb=sheet_thumb, caption=sheet_caption(report))
    return report


def sheet_caption(report: dict) -> list[str]:
    """The contact sheet's caption: what each cell shows and the table's figures."""
    t = report["table"]
    lines = [f"each cell: grey input | {report['model']} | original.  {report['images']} images, "
             f"render size {report['render_size']}.  realism = Frechet distance of MobileNetV2 features to the originals'"]
    for key, label in (("grey", "grey baseline"), ("ours", "colorized"), ("original", "originals")):
        r = t[key]
        top1 = f"{r['top1'] * 100:.1f}%" if r["top1"] is not None else "n/a"
        ps = f"{r['psnr']:.2f} dB" if key != "original" else "cap"
        lines.append(f"{label}: PSNR {ps}, SSIM {r['ssim']:.4f}, colourfulness {r['colourfulness']:.1f} "
                     f"(ratio {r['colourfulness_ratio']:.3f}), top-1 {top1}, realism {r['realism_fd']:.1f}")
    return lines


def format_table(report: dict) -> str:
    t = report["table"]
    lines = ["| | PSNR (dB) | SSIM | colourfulness | ratio to originals | top-1 | realism (FD) |",
             "|---|---|---|---|---|---|---|"]
    for key, label in (("grey", "grey baseline (a=b=0)"), ("ours", "ours"), ("original", "originals")):
        r = t[key]
        top1 = f"{r['top1'] * 100:.1f}%" if r["top1"] is not None else "n/a"
        ps = f"{r['psnr']:.2f}" if key != "original" else f"{r['psnr']:.0f} (cap)"
        lines.append(f"| {label} | {ps} | {r['ssim']:.4f} | {r['colourfulness']:.1f} | "
                     f"{r['colourfulness_ratio']:.3f} | {top1} | {r['realism_fd']:.1f} |")
    return "\n".join(lines)
