"""What a colour reference buys on real footage: ``vidcolor colorize --reference`` on a desaturated
colour clip, against the same clip without a reference, and with a reference from another subject.

The clip is ``../shared/data/videos/cockatoo.mp4`` (live colour footage, 280 frames). It is
desaturated (the luma is kept, the chroma set to neutral) and colorized through the real CLI. The
reference is the original's first frame, saved as a PNG: the situation of an archive that holds
one colour still of a scene. Every 5th frame of each output is compared with the original in RGB:
PSNR, and colourfulness (Hasler and Suesstrunk) against the original's.

    .venv/bin/python benchmarks/reference_palette.py ../shared/data --out benchmarks/results/reference_palette.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STRIDE = 5


def rgb_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i % STRIDE == 0]


def compare(frames: list[np.ndarray], originals: list[np.ndarray]) -> dict:
    from vidcolor.evaluation.metrics import colourfulness, psnr

    assert len(frames) == len(originals), (len(frames), len(originals))
    return {"psnr_db": round(float(np.mean([psnr(f, o) for f, o in zip(frames, originals)])), 3),
            "colourfulness": round(float(np.mean([colourfulness(f) for f in frames])), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("shared_data", type=Path)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "reference_palette.json")
    args = ap.parse_args()
    clip = args.shared_data / "videos" / "cockatoo.mp4"
    other = sorted((args.shared_data / "images" / "train").glob("n0*_*"))[0]  # an unrelated photo
    vidcolor = str(Path(sys.executable).parent / "vidcolor")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        grey = work / "grey.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-vf", "hue=s=0", "-c:v", "libx264", "-crf", "12",
                        "-c:a", "copy", str(grey)], check=True)
        reference = work / "first-frame.png"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-frames:v", "1", str(reference)], check=True)
        originals = rgb_frames(clip)
        rows = {"grey baseline (the desaturated clip)": compare(rgb_frames(grey), originals)}
        for name, extra in [("no reference", []),
                            ("reference: the clip's first frame", ["--reference", str(reference)]),
                            (f"reference: an unrelated photo ({other.name})", ["--reference", str(other)])]:
            out = work / f"out-{len(rows)}.mp4"
            t0 = time.time()
            subprocess.run([vidcolor, "colorize", str(grey), "-o", str(out), "--store", str(work / "store"), *extra],
                           check=True, capture_output=True)
            rows[name] = {**compare(rgb_frames(out), originals), "wall_s": round(time.time() - t0, 1)}
            print(name, rows[name], flush=True)
    from vidcolor.evaluation.metrics import colourfulness

    original_c = float(np.mean([colourfulness(o) for o in originals]))
    base = rows["grey baseline (the desaturated clip)"]["psnr_db"]
    for row in rows.values():
        row["psnr_over_grey_db"] = round(row["psnr_db"] - base, 3)
        row["colourfulness_ratio"] = round(row["colourfulness"] / original_c, 3)
    result = {"clip": clip.name, "frames_compared": len(originals), "every_nth_frame": STRIDE,
              "original_colourfulness": round(original_c, 2), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
