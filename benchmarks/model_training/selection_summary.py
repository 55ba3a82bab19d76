"""Side by side: `vidcolor eval images` reports of several models on the same selection folder
(never the eval split), as PSNR over grey, colourfulness ratio and top-1, with each candidate's
difference to the first (the shipped model), and whether it beats it on all three.

    python benchmarks/model_training/selection_summary.py OUT.json v3=REPORT_DIR v4a=REPORT_DIR ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(report: dict) -> dict:
    t = report["table"]
    return {"psnr_over_grey_db": t["ours"]["psnr"] - t["grey"]["psnr"], "psnr": t["ours"]["psnr"],
            "colourfulness_ratio": t["ours"]["colourfulness_ratio"], "top1": t["ours"]["top1"],
            "ssim": t["ours"]["ssim"], "grey_top1": t["grey"]["top1"], "original_top1": t["original"]["top1"]}


def main(out: str, *named: str) -> None:
    reports = {}
    for item in named:
        name, folder = item.split("=", 1)
        reports[name] = json.loads((Path(folder) / "report.json").read_text())
    folders = {r["folder"] for r in reports.values()}
    counts = {r["images"] for r in reports.values()}
    if len(folders) != 1 or len(counts) != 1:
        raise SystemExit(f"reports are not on the same images: {sorted(folders)} {sorted(counts)}")
    rows = {name: {"model": r["model"], **row(r)} for name, r in reports.items()}
    base_name = next(iter(rows))
    base = rows[base_name]
    for name, r in list(rows.items())[1:]:
        r["vs_" + base_name] = {k: r[k] - base[k] for k in ("psnr_over_grey_db", "colourfulness_ratio", "top1")}
        r["beats_" + base_name] = all(v > 0 for v in r["vs_" + base_name].values())
    summary = {"folder": folders.pop(), "images": counts.pop(), "models": rows}
    Path(out).write_text(json.dumps(summary, indent=1))
    for name, r in rows.items():
        print(f"{name:>10}: {r['psnr_over_grey_db']:+.2f} dB over grey, ratio {r['colourfulness_ratio']:.3f}, "
              f"top-1 {r['top1']:.1%}")


if __name__ == "__main__":
    main(*sys.argv[1:])
