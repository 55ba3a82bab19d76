"""Plots and markdown tables for docs/temporal.md from benchmarks/results/temporal_quality.json.

    PYTHONPATH=. .venv/bin/python benchmarks/temporal_plots.py [--results FILE] [--out docs/temporal]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def fmt(x, nd=3):
    return "-" if x is None else f"{x:.{nd}f}"


def local_seam(series: list, join: int, radius: int = 8) -> float | None:
    """The chroma change at a join over the median change of the ``radius`` frames on each side
    (the join left out): does the join stand out from the passage it lies in? The scene-median
    seam score also flags a join that falls in a busy passage (a blast, a cyclist close by)."""
    around = [x for k, x in enumerate(series[max(1, join - radius): join + radius + 1], max(1, join - radius))
              if k != join and x is not None and x == x]
    if not around or series[join] is None:
        return None
    ordered = sorted(around)
    median = ordered[len(ordered) // 2]
    return series[join] / max(median, 1e-6)


def tables(res: dict) -> str:
    runs = res["runs"]
    clips = list(dict.fromkeys(r["clip"] for r in runs.values()))
    lines = ["| clip | frames | config | CDC | CDC / original | warp error | warp / original | chroma warp / original "
             "| PSNR dB | SSIM | worst seam (joins) | wall s |", "|" + " --- |" * 12]
    for clip in clips:
        for name in ("frame-by-frame", "attention-only", "default", "overlap-4", "overlap-20"):
            r = runs.get(f"{clip}/{name}")
            if not r:
                continue
            s = r["summary"]
            seams = f"{fmt(s.get('max_seam_score'), 2)} ({len(s.get('seams', {}))})"
            if s.get("original_seams") and s.get("max_seam_score") is not None:
                worst = max(s["seams"], key=s["seams"].get)
                seams += f" at {worst}; original there {fmt(s['original_seams'].get(worst), 2)}"
            if s.get("max_flow_seam_score") is not None:
                seams += f"; flow {fmt(s['max_flow_seam_score'], 2)}"
            local = [local_seam(r["series"]["chroma_change"], int(j)) for j in s.get("seams", {})]
            local = [v for v in local if v is not None]
            if local:
                seams += f"; local {max(local):.2f}"
            lines.append(f"| {clip} | {r['frames']} | {name} | {fmt(s['cdc'], 5)} | {fmt(s.get('cdc_ratio'), 2)} | "
                         f"{fmt(s['warp_error'], 6)} | {fmt(s.get('warp_error_ratio'), 2)} | "
                         f"{fmt(s.get('chroma_warp_error_ratio'), 2)} | {fmt(s.get('psnr'), 2)} | {fmt(s.get('ssim'), 3)} | "
                         f"{seams} | {r['wall_seconds']:.0f} |")
    out = "\n".join(lines)
    # default vs frame by frame
    rows = ["| clip | CDC default / fbf | warp default / fbf | chroma warp default / fbf | PSNR default - fbf dB | "
            "fbf wall / default wall |", "|" + " --- |" * 6]
    tot = {"fbf": 0.0, "default": 0.0}
    for clip in clips:
        a, b = runs.get(f"{clip}/frame-by-frame"), runs.get(f"{clip}/default")
        if not (a and b):
            continue
        sa, sb = a["summary"], b["summary"]
        tot["fbf"] += a["wall_seconds"]
        tot["default"] += b["wall_seconds"]
        dpsnr = sb["psnr"] - sa["psnr"] if sa.get("psnr") is not None else None
        cw = (sb["chroma_warp_error"] / sa["chroma_warp_error"]) if sa.get("chroma_warp_error") else None
        rows.append(f"| {clip} | {fmt(sb['cdc'] / sa['cdc'], 2)} | {fmt(sb['warp_error'] / sa['warp_error'], 2)} | "
                    f"{fmt(cw, 2)} | {fmt(dpsnr, 2)} | {fmt(a['wall_seconds'] / b['wall_seconds'], 2)} |")
    if tot["default"]:
        rows.append(f"| all clips | | | | | {fmt(tot['fbf'] / tot['default'], 2)} |")
    out += "\n\n" + "\n".join(rows)
    ramp_rows = ["| clip | joins | linear blend, then the stabiliser's scene pass (as shipped) | cosine blend only | "
                 "step (no blend, no pass) |", "|" + " --- |" * 5]
    for clip in clips:
        r = runs.get(f"{clip}/default")
        if not r or "ramps_render_size" not in r:
            continue
        rr = r["ramps_render_size"]
        ramp_rows.append(f"| {clip} | {len(rr['linear']['seams'])} | " + " | ".join(
            f"{fmt(rr[k]['max_seam_score'], 2)}" for k in ("linear", "cosine", "step")) + " |")
    out += "\n\n" + "\n".join(ramp_rows)
    ov_rows = ["| clip | overlap | CDC / original | chroma warp / original | PSNR dB | seam scores at the joins |",
               "|" + " --- |" * 6]
    for clip in clips:
        for name in ("overlap-4", "default", "overlap-20"):
            r = runs.get(f"{clip}/{name}")
            if not r or not runs.get(f"{clip}/overlap-4"):
                continue
            s = r["summary"]
            seams = ", ".join(f"{k}: {v:.2f}" for k, v in s.get("seams", {}).items())
            ov_rows.append(f"| {clip} | {r['settings']['overlap_frames']} | {fmt(s.get('cdc_ratio'), 2)} | "
                           f"{fmt(s.get('chroma_warp_error_ratio'), 2)} | {fmt(s.get('psnr'), 2)} | {seams} |")
    if len(ov_rows) > 2:
        out += "\n\n" + "\n".join(ov_rows)
    return out


def plots(res: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = res["runs"]
    out.mkdir(parents=True, exist_ok=True)
    colour = [c for c in dict.fromkeys(r["clip"] for r in runs.values()) if runs.get(f"{c}/default", {}).get("summary", {}).get("cdc_ratio")]
    configs = [c for c in ("frame-by-frame", "attention-only", "default") if any(f"{k}/{c}" in runs for k in colour)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), dpi=80)
    x = np.arange(len(colour))
    for ax, key, target, label in ((axes[0], "cdc_ratio", 1.2, "CDC / original's"),
                                   (axes[1], "warp_error_ratio", 1.3, "warp error (RGB, Lai et al.) / original's")):
        w = 0.8 / max(1, len(configs))
        for i, c in enumerate(configs):
            vals = [runs.get(f"{k}/{c}", {}).get("summary", {}).get(key) or 0 for k in colour]
            ax.bar(x + (i - (len(configs) - 1) / 2) * w, vals, w, label=c)
        ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target {target}")
        ax.set_xticks(x, [k.replace("vid4_", "") for k in colour], fontsize=8)
        ax.set_title(label + " (log scale)", fontsize=9)
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ratios.png")
    plt.close(fig)

    for clip in ("bikes", "cockatoo", "a-bomb_blast_effects_part"):
        a, b = runs.get(f"{clip}/frame-by-frame"), runs.get(f"{clip}/default")
        if not (a and b):
            continue
        fig, ax = plt.subplots(figsize=(10, 3), dpi=80)
        for r, name in ((a, "frame by frame"), (b, "default")):
            ch = np.array([np.nan if v is None else v for v in r["series"]["chroma_change"]], float)
            ax.plot(ch, lw=0.9, label=f"{name} (worst seam {fmt(r['summary'].get('max_seam_score'), 2)})")
        orig = b["series"].get("original_chroma_change")
        if orig:
            ax.plot(np.array([np.nan if v is None else v for v in orig], float), lw=0.8, color="tab:green",
                    alpha=0.8, label="colour original")
        for i, c in enumerate(b["summary"]["scene_starts"][1:]):
            ax.axvline(c, color="tab:red", lw=1, label="cut" if i == 0 else None)
        for i, j in enumerate(b["chunk_joins"]):
            ax.axvline(j, color="0.5", ls="--", lw=0.7, label="chunk join" if i == 0 else None)
        ax.set_title(f"{clip}: chroma change per frame (mean |delta ab|), chunk cap 48, overlap 12", fontsize=9)
        ax.set_xlabel("frame")
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        fig.savefig(out / f"timeline_{clip.split('_')[0]}.png")
        plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "temporal_quality.json"))
    ap.add_argument("--out", default=str(REPO / "docs" / "temporal"))
    args = ap.parse_args()
    res = json.loads(Path(args.results).read_text())
    print(tables(res))
    plots(res, Path(args.out))


if __name__ == "__main__":
    main()
