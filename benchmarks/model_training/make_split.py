"""Build the folders the shipped model was trained and calibrated on (symlinks, nothing copied).

fit/:    ../shared/data/images/train minus a held-out slice of 100 ImageNet detection images
select/: ../shared/data/images/val (95 ImageNet sample images) + that held-out slice

val/ alone holds only ImageNet *sample* images while eval/ holds only ImageNet *detection* images;
calibrating on val alone did not carry over to eval, so the selection set mixes both kinds.
eval/ is never touched.

    python benchmarks/model_training/make_split.py ../shared/data/images /tmp/vc_data
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path


def main(images: str, out: str) -> None:
    root = Path(images).resolve()
    with open(root / "manifest.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    detection = sorted(Path(r["file"]).stem for r in rows if r["split"] == "train" and "imagen" in r["source"])
    held_out = set(detection[3::8][:100])
    fit, select = Path(out) / "fit", Path(out) / "select"
    for d in (fit, select):
        d.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        for name in sorted(os.listdir(root / split)):  # the manifest's extensions differ from the files'
            dst = (select if split == "val" or Path(name).stem in held_out else fit) / name
            if not dst.exists():
                os.symlink(root / split / name, dst)
    print(f"{fit}: {len(os.listdir(fit))} images, {select}: {len(os.listdir(select))} images")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
