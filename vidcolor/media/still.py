"""Still images: the one place vidcolor reads, writes and lists them (photos to colorize, colour
references, evaluation and training photos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_name(p))


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


def encode_image_rgb(rgb: np.ndarray, suffix: str, name: str | Path = "image") -> bytes:
    """The bytes of ``rgb`` (uint8, (H, W, 3) or (H, W)) as an image file of type ``suffix``."""
    import cv2

    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(suffix.lower() or ".png", img)
    if not ok:
        raise ValueError(f"{name}: cannot encode an image with suffix {suffix!r}")
    return buf.tobytes()


def write_image_rgb(path: str | Path, rgb: np.ndarray) -> None:
    """Write ``rgb`` atomically; the format follows the suffix (.png when there is none)."""
    from vidcolor.atomic import write_bytes_atomic

    path = Path(path)
    write_bytes_atomic(path, encode_image_rgb(rgb, path.suffix or ".png", path))
