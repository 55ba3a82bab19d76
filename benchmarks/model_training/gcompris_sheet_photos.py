"""Photos for a public contact sheet: Wikimedia Commons photos shipped in the Debian package
gcompris-qt-data that are NOT in ``../shared/data`` (so no model here was trained or tuned on
them), each with the author, licence and source that the package's copyright file gives.

    apt-get download gcompris-qt-data        # the Debian archive, e.g. gcompris-qt-data_3.1-2_all.deb
    .venv/bin/python benchmarks/model_training/gcompris_sheet_photos.py gcompris-qt-data_3.1-2_all.deb OUT
    .venv/bin/vidcolor eval images OUT -o REPORT

The package keeps its images in Qt resource files (``.rcc``); this reads them directly (format:
"qres" header, a tree of 22-byte nodes, UTF-16 names, size-prefixed data, zlib when flagged).
Writes OUT/*.png (lossless copies of the WebP originals) and OUT/CREDITS.md.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

RCC = "usr/share/gcompris-qt/rcc/categorization.rcc"
COPYRIGHT = "usr/share/doc/gcompris-qt-data/copyright"
PREFIX = "gcompris/src/activities/categorization/resource/images/"
# photos of the categorization activity that ../shared/data does not hold and whose Commons
# source the copyright file names (fish17 is left out: its entry names a different photo)
PHOTOS = ("tools/multimeter1", "tools/plier1", "tools/plier2", "tools/tweezer", "tools/tweezer1", "tools/wrench",
          "tools/wrench1", "renewable/solar6", "fishes/fish8", "monuments/jucheTower", "monuments/leMusee",
          "others/erasers", "others/pencil")


def rcc_files(data: bytes) -> dict[str, bytes]:
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 22 if version >= 2 else 14
    out: dict[str, bytes] = {}

    def name(offset: int) -> str:
        n = struct.unpack(">H", data[names + offset:names + offset + 2])[0]
        return data[names + offset + 6:names + offset + 6 + 2 * n].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        base = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[base:base + 6])
        here = prefix + (name(name_offset) if index else "")
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[base + 6:base + 14])
            for k in range(count):
                walk(first + k, here + "/" if index else "")
        else:
            offset = struct.unpack(">I", data[base + 10:base + 14])[0]
            size = struct.unpack(">I", data[payload + offset:payload + offset + 4])[0]
            raw = data[payload + offset + 4:payload + offset + 4 + size]
            if flags & 4:  # zstd: not used for images
                return
            out[here] = zlib.decompress(raw[4:]) if flags & 1 else raw

    walk(0, "")
    return out


def credit(copyright_text: str, stem: str) -> dict:
    """The copyright file's stanza for ``.../images/<stem>.jpg``: author, licence, source."""
    m = re.search(rf"Files: src/activities/categorization/resource/images/{re.escape(stem)}\.jpg\n"
                  r"Copyright: (?P<author>.*)\nLicense: (?P<licence>.*)\nComment: (?P<source>.*)\n", copyright_text)
    if not m:
        raise ValueError(f"no credit for {stem} in the package's copyright file")
    return m.groupdict()


def main() -> None:
    import cv2
    import numpy as np

    deb, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        files = rcc_files((Path(tmp) / RCC).read_bytes())
        copyright_text = (Path(tmp) / COPYRIGHT).read_text()
    lines = ["# Contact-sheet photos: credits", "",
             "Photos from Wikimedia Commons as shipped in the Debian package gcompris-qt-data (3.1-2), credited",
             "as its copyright file credits them. None is in `../shared/data`: no vidcolor model was trained or",
             "tuned on them. The contact sheet shows each desaturated, colorized and as the original.", "",
             "| file | author | licence | source |", "|---|---|---|---|"]
    for stem in PHOTOS:
        img = cv2.imdecode(np.frombuffer(files[PREFIX + stem + ".webp"], np.uint8), cv2.IMREAD_COLOR)
        name = stem.replace("/", "_") + ".png"
        cv2.imwrite(str(out / name), img)
        c = credit(copyright_text, stem)
        lines.append(f"| {name} | {c['author']} | {c['licence']} | {c['source']} |")
    (out / "CREDITS.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(PHOTOS)} photos and CREDITS.md to {out}")


if __name__ == "__main__":
    main()
