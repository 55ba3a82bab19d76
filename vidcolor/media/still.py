"""Reading a still image (a photo to colorize, a colour reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_image_rgb(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file; ValueError naming the file when it is not one.
    Read as bytes first so any path the OS accepts works (cv2.imread rejects some)."""
    import cv2

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ValueError(f"{path}: not a readable image (unknown or corrupt format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
