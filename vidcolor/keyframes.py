"""Colour keyframes: a colourist's frames that steer their scenes.

A keyframes folder holds colour images named by the 0-based frame index they show (``000120.png``,
``120.jpg``), each at the film's aspect ratio (any size). Only a keyframe's chroma is used: it is
converted to Lab ab at the run's render size; the film's own luma is kept.

A keyframe steers the frames of its own scene (scenes as split finds them); a scene with several
uses them all, each frame following the nearest one it can reach (vidcolor.propagate weighs them by
confidence, which decays with distance). A scene without any is colorized automatically, led by
the palette of the nearest keyframe (vidcolor.palette), unless that lead is switched off.

Run state (so every Ray node sees them)::

    runs/<run_id>/keyframes/<index>.npz    ab (int8, render size) and the film's luma of that frame
    runs/<run_id>/keyframes/keyframes.json  index -> sha256 of its .npz, written after them

The keyframe set is NOT part of the run id: each chunk's done-marker records the digest of what
steers it (``ChunkKeyframes.digest``), so a changed keyframe redoes only the chunks of its scene
(and, through the palette lead, of scenes that borrow its palette).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidcolor.errors import BadInputError

ASPECT_TOLERANCE = 0.01  # relative difference of width/height allowed between a keyframe and the film
GREY_CHROMA = 4.0  # ab units: a keyframe whose 99th-percentile chroma is below this has no colour
LEAD_PALETTE_STRENGTH = 1.0  # how hard the GAN leans towards a keyframe's palette
# Changes when the propagation changes what it outputs: chunks made by another method are redone.
METHOD = "keyframes-1"
KEYFRAME_FORMAT = 1


# --- one keyframe --------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Keyframe:
    index: int  # 0-based frame of the film it shows
    path: str  # where it was read from (for messages)
    ab: np.ndarray  # (h, w, 2) int8 Lab ab at the run's render size

    @property
    def digest(self) -> str:
        """What the keyframe contributes: its frame and its chroma at the render size."""
        h = hashlib.sha256(f"{self.index};{self.ab.shape}".encode())
        h.update(np.ascontiguousarray(self.ab).tobytes())
        return h.hexdigest()[:16]

    def palette_text(self) -> str:
        from vidcolor.palette import palette_from_ab

        return palette_from_ab(self.ab.astype(np.float32)).to_text()


def frame_index_of(name: str) -> int | None:
    """The frame index a file name stands for (``000120.png`` -> 120), or None."""
    stem = Path(name).stem
    return int(stem) if stem.isdigit() else None


def keyframe_ab(rgb: np.ndarray, render_wh: tuple[int, int]) -> np.ndarray:
    """int8 Lab ab (h, w, 2) of an RGB uint8 image at the render size (w, h)."""
    import cv2

    from vidcolor.color import rgb_to_lab

    small = cv2.resize(rgb, render_wh, interpolation=cv2.INTER_AREA) if rgb.shape[1::-1] != tuple(render_wh) else rgb
    ab = rgb_to_lab(small.astype(np.float32) / 255.0)[..., 1:]
    return np.clip(np.rint(ab), -127, 127).astype(np.int8)


def chroma_level(rgb: np.ndarray) -> float:
    """99th percentile of the chroma magnitude (ab units) of an RGB uint8 image (thumbnail)."""
    import cv2

    from vidcolor.color import rgb_to_lab

    h, w = rgb.shape[:2]
    s = min(1.0, 128 / max(h, w))
    if s < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ab = rgb_to_lab(rgb.astype(np.float32) / 255.0)[..., 1:]
    return float(np.percentile(np.hypot(ab[..., 0], ab[..., 1]), 99))


def read_keyframes(folder: str, film_size: tuple[int, int], total_frames: int,
                   render_wh: tuple[int, int]) -> tuple[Keyframe, ...]:
    """Every keyframe of ``folder``, checked: BadInputError (one line naming the file) for a missing
    folder, a name that is not a frame index, two files of one frame, an index past the film's end,
    an unreadable or grey image, or an aspect ratio other than the film's."""
    from vidcolor.media.still import read_image_rgb

    root = Path(folder)
    if not root.exists():
        raise BadInputError(folder, "no such keyframes folder")
    if not root.is_dir():
        raise BadInputError(folder, "is not a folder (--keyframes takes a folder of images named by frame index)")
    files = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    if not files:
        raise BadInputError(folder, "holds no keyframes (colour images named by frame index, e.g. 000120.png)")
    fw, fh = film_size
    film_aspect = fw / fh
    seen: dict[int, Path] = {}
    out = []
    for p in files:
        index = frame_index_of(p.name)
        if index is None or not p.is_file():
            raise BadInputError(str(p), "is not named by a frame index (name keyframes like 000120.png or 120.jpg)")
        if index in seen:
            raise BadInputError(str(p), f"shows frame {index}, as {seen[index].name} does; keep one of them")
        seen[index] = p
        if index >= total_frames:
            raise BadInputError(str(p), f"frame {index} is past the film's end (it has {total_frames} frames, "
                                        f"0-{total_frames - 1})")
        try:
            rgb = read_image_rgb(p)
        except ValueError as e:
            raise BadInputError(str(p), str(e).split(": ", 1)[-1]) from None
        ih, iw = rgb.shape[:2]
        if abs((iw / ih) / film_aspect - 1) > ASPECT_TOLERANCE:
            raise BadInputError(str(p), f"is {iw}x{ih} (aspect {iw / ih:.3f}) but the film is {fw}x{fh} "
                                        f"({film_aspect:.3f}); a keyframe must show the whole frame")
        if chroma_level(rgb) < GREY_CHROMA:
            raise BadInputError(str(p), "is grey (it has no colour); paint it before using it as a keyframe")
        out.append(Keyframe(index, str(p), keyframe_ab(rgb, render_wh)))
    return tuple(sorted(out, key=lambda k: k.index))


def film_frame_count(info, source_path: str) -> int:
    """The film's frame count: the container's, else counted (ffprobe, packets only)."""
    if info.frame_count_header:
        return int(info.frame_count_header)
    from vidcolor.media.mux import count_video_frames

    n = count_video_frames(source_path)
    if n <= 0:
        raise BadInputError(source_path, "cannot count its frames to check the keyframes against")
    return n


# --- what steers each chunk ------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceRange:
    """A chunk source of the scene: chunk ``chunk``'s source.npz holds frames [start, end)."""

    chunk: int
    start: int
    end: int


@dataclass(frozen=True)
class ChunkKeyframes:
    """What steers one chunk. ``frames``: the keyframes of its scene (propagated into it);
    ``palette``: the palette (Palette text) that leads the GAN's prediction ("" = none);
    ``sources``: the scene's chunk sources that hold the luma between a keyframe and the chunk;
    ``checksums``: sha256 of each keyframe's run-state file, checked by the actor."""

    frames: tuple[int, ...] = ()
    palette: str = ""
    sources: tuple[SourceRange, ...] = ()
    checksums: dict = field(default_factory=dict)
    digest: str = ""

    @property
    def propagates(self) -> bool:
        return bool(self.frames)


def scene_bounds(scene_starts, total_frames: int) -> list[tuple[int, int]]:
    b = list(scene_starts) + [total_frames]
    return list(zip(b[:-1], b[1:]))


def keyframes_by_scene(scene_starts, total_frames: int, indices) -> dict[int, list[int]]:
    """{scene: its keyframe indices, in order}: a keyframe steers its own scene."""
    starts = np.asarray(list(scene_starts))
    out: dict[int, list[int]] = {}
    for k in sorted(indices):
        if not 0 <= k < total_frames:
            raise ValueError(f"keyframe {k} is outside the film (0-{total_frames - 1})")
        out.setdefault(int(np.searchsorted(starts, k, side="right") - 1), []).append(k)
    return out


def nearest_keyframe(lo: int, hi: int, indices) -> int | None:
    """The keyframe nearest in time to frames [lo, hi) (the earlier one on a tie)."""
    best = None
    for k in sorted(indices):
        d = lo - k if k < lo else (k - (hi - 1) if k >= hi else 0)
        if best is None or d < best[0]:
            best = (d, k)
    return None if best is None else best[1]


def steering(plan, keyframes, lead_palette: bool = True, checksums: dict | None = None) -> dict[int, ChunkKeyframes]:
    """{chunk index: what steers it} for every chunk that something steers. A chunk of a scene
    with keyframes propagates them all (led by the palette of the keyframe nearest to it); a chunk
    of a scene without is led by the palette of the keyframe nearest to it, if ``lead_palette``."""
    if not keyframes:
        return {}
    by_index = {k.index: k for k in keyframes}
    bounds = scene_bounds(plan.scene_starts, plan.total_frames)
    in_scene = keyframes_by_scene(plan.scene_starts, plan.total_frames, by_index)
    palettes: dict[int, str] = {}
    out = {}
    for c in plan.chunks:
        own = in_scene.get(c.scene, [])
        lead = nearest_keyframe(c.core_start, c.core_end, own or (by_index if lead_palette else []))
        if lead is None:
            continue
        if lead not in palettes:
            palettes[lead] = by_index[lead].palette_text()
        sources = ()
        if own:
            lo, hi = min(own + [c.ext_start]), max([k + 1 for k in own] + [c.ext_end])
            s_lo, s_hi = bounds[c.scene]
            lo, hi = max(lo, s_lo), min(hi, s_hi)
            sources = tuple(SourceRange(o.index, o.ext_start, o.ext_end) for o in plan.chunks
                            if o.scene == c.scene and o.index != c.index and o.ext_start < hi and o.ext_end > lo
                            and (o.ext_start < c.ext_start or o.ext_end > c.ext_end))
        blob = json.dumps({"method": METHOD, "frames": [[k, by_index[k].digest] for k in own],
                           "palette": palettes[lead]}, sort_keys=True)
        out[c.index] = ChunkKeyframes(
            frames=tuple(own), palette=palettes[lead], sources=sources,
            checksums={k: (checksums or {}).get(k, "") for k in own},
            digest=hashlib.sha256(blob.encode()).hexdigest()[:16])
    return out


def segment_digest(plan, steer: dict[int, ChunkKeyframes], index: int) -> str:
    """What steers the chroma a chunk's segment is made of (its blend contributors); "" when
    nothing does, so segments of runs without keyframes keep their markers."""
    from vidcolor.plan import contributors

    parts = [steer[c.index].digest for c in contributors(list(plan.chunks), index) if c.index in steer]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16] if parts else ""


# --- run state ---------------------------------------------------------------------------------------

def keyframe_key(layout, index: int) -> str:
    return f"{layout.root}/keyframes/{index:06d}.npz"


def keyframes_doc_key(layout) -> str:
    return f"{layout.root}/keyframes/keyframes.json"


def source_holding(plan, frame: int):
    """The chunk whose core holds ``frame`` (its source holds the frame's render-size luma)."""
    for c in plan.chunks:
        if c.core_start <= frame < c.core_end:
            return c
    raise ValueError(f"frame {frame} is in no chunk of the plan")


def store_keyframes(store, layout, plan, keyframes, lead_palette: bool = True) -> dict[int, ChunkKeyframes]:
    """Copy the keyframes into the run state (ab and the film's luma of their frame, at the render
    size), then their checksums; return what steers each chunk. A keyframe whose file already
    holds the same content is not rewritten."""
    from vidcolor.state import pack_array, sha256_bytes, unpack_array

    if not keyframes:
        return {}
    try:
        doc = store.get_json(keyframes_doc_key(layout))
        known = {int(k): v for k, v in doc.get("keyframes", {}).items()} if isinstance(doc, dict) else {}
        digests = {int(k): v for k, v in doc.get("digests", {}).items()} if isinstance(doc, dict) else {}
    except (KeyError, ValueError):
        known, digests = {}, {}
    checksums = {}
    for kf in keyframes:
        key = keyframe_key(layout, kf.index)
        if digests.get(kf.index) == kf.digest and known.get(kf.index):
            try:
                if sha256_bytes(store.get_bytes(key)) == known[kf.index]:
                    checksums[kf.index] = known[kf.index]
                    continue
            except KeyError:
                pass
        holder = source_holding(plan, kf.index)
        luma = unpack_array(store.get_bytes(layout.chunk(holder.index, "source.npz")), "luma")[kf.index - holder.ext_start]
        if luma.shape != kf.ab.shape[:2]:
            raise ValueError(f"keyframe {kf.index}: ab is {kf.ab.shape[:2]}, the run's luma {luma.shape}")
        data = pack_array(ab=kf.ab, luma=luma)
        store.put_bytes(key, data)
        checksums[kf.index] = sha256_bytes(data)
    store.put_json(keyframes_doc_key(layout), {
        "version": KEYFRAME_FORMAT, "keyframes": {str(k): v for k, v in sorted(checksums.items())},
        "digests": {str(k.index): k.digest for k in keyframes}, "paths": {str(k.index): k.path for k in keyframes}})
    return steering(plan, keyframes, lead_palette, checksums)


def load_stored_keyframe(store, layout, index: int, checksum: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(ab int8 (h, w, 2), luma uint8 (h, w)) of a keyframe in the run state; RuntimeError when
    its checksum does not match the one the driver recorded."""
    from vidcolor.state import sha256_bytes, unpack_array

    data = store.get_bytes(keyframe_key(layout, index))
    if checksum and sha256_bytes(data) != checksum:
        raise RuntimeError(f"keyframe {index}: run-state file does not match its checksum")
    return unpack_array(data, "ab"), unpack_array(data, "luma")


# --- grey frames for a colourist ------------------------------------------------------------------------

def parse_frame_list(text: str) -> list[int]:
    """``"0,120, 250"`` -> [0, 120, 250]; BadInputError naming --frames."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise BadInputError("--frames", f"{part!r} is not a 0-based frame index (give e.g. 0,120,250)")
        out.append(int(part))
    return sorted(set(out))


def grey_frames(source_path: str, info, frames=(), every_scene: bool = True, scene_threshold: float = 27.0,
                min_scene_frames: int = 8):
    """Yield (frame index, full-resolution grey RGB uint8) of the chosen ``frames`` and, with
    ``every_scene``, of each scene's first frame (cuts found as split finds them), in one decode."""
    from collections import deque

    import cv2

    from vidcolor.media.luma import iter_luma
    from vidcolor.stages.split import DETECT_WIDTH, SceneCutDetector

    wanted = set(frames)
    detector = SceneCutDetector(info.fps, scene_threshold, min_scene_frames) if every_scene else None
    dw = min(DETECT_WIDTH, info.width)
    dh = max(2, int(round(info.height * dw / info.width)))
    recent: deque = deque(maxlen=(detector.lag + 2) if detector else 1)  # frames a late cut may name
    done: set[int] = set()

    def grey(y):
        if not info.full_range:  # limited-range luma -> full-range grey for painting
            y = np.clip((y.astype(np.float32) - 16) * (255 / 219), 0, 255).astype(np.uint8)
        return np.repeat(y[..., None], 3, axis=-1)

    def cuts_in(found):
        for c in found:
            for index, y in recent:
                if index == c and c not in done:
                    done.add(c)
                    yield c, grey(y)

    last = -1
    for frame in iter_luma(source_path):
        last = frame.index
        recent.append((frame.index, frame.y))
        if frame.index in wanted or (every_scene and frame.index == 0):
            done.add(frame.index)
            yield frame.index, grey(frame.y)
        if detector is not None:
            small = cv2.resize(frame.y, (dw, dh), interpolation=cv2.INTER_AREA)
            yield from cuts_in(detector.feed(frame.index, small))
        if not every_scene and len(done) == len(wanted):
            return
    if detector is not None and last >= 0:
        yield from cuts_in(detector.finish(last))


def write_grey_keyframes(input_path: str, out_dir: str, frames=(), every_scene: bool = True) -> list[str]:
    """Write the grey frames of ``grey_frames`` as PNGs named by frame index (000120.png) into
    ``out_dir``; returns their paths. Bad input is refused before anything is written."""
    from vidcolor.media.probe import check_readable_file, probe_video
    from vidcolor.media.still import write_image_rgb
    from vidcolor.settings import ChromaSettings

    check_readable_file(input_path)
    info = probe_video(input_path)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInputError(out_dir, "exists and is not a folder")
    if not out.parent.resolve().is_dir():
        raise BadInputError(out_dir, f"its parent folder {str(out.parent)!r} does not exist")
    if frames:
        total = film_frame_count(info, input_path)
        past = [f for f in frames if f >= total]
        if past:
            raise BadInputError("--frames", f"frame {past[0]} is past the film's end (it has {total} frames, 0-{total - 1})")
    defaults = ChromaSettings()
    written = []
    for index, rgb in grey_frames(input_path, info, frames, every_scene or not frames,
                                  defaults.scene_threshold, defaults.min_scene_frames):
        path = out / f"{index:06d}.png"
        write_image_rgb(path, rgb)
        written.append(str(path))
    return sorted(written)
