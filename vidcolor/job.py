"""A user's request, checked once and turned into an immutable, identified ``Job``.

Every problem with the input, output or settings surfaces here as one BadInputError line, so bad
input never starts Ray or Prefect and never leaves a file behind. The job is made once per
invocation (by the CLI, or by the flow when a deployment starts it) and travels unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from vidcolor.errors import BadInputError, RunFailedError
from vidcolor.media.codecs import CODECS, DEEP_BITS, OUTPUT_CONTAINERS, QUALITY_RANGE, deep_codecs
from vidcolor.media.mux import output_suffix
from vidcolor.media.probe import VideoInfo, check_readable_file, probe_video
from vidcolor.settings import ChromaSettings, EncodeSettings
from vidcolor.state import RunLayout
from vidcolor.store import bucket_store, cache_root, default_store_uri, is_s3_uri, split_s3_uri

MAX_PALETTE_STRENGTH = 3.0
ROTATION_CONTAINERS = (".mp4", ".mov")  # containers that keep a display matrix
_SAMPLE_BLOCK = 1 << 20


@dataclass(frozen=True)
class Job:
    input_uri: str
    output_uri: str
    source_path: str  # local path of the input (staged from S3 when needed)
    info: VideoInfo
    fingerprint: str
    model_identity: str
    size_multiple: int
    run_id: str
    store_uri: str
    chroma: ChromaSettings
    encode: EncodeSettings
    keyframes: tuple = ()  # vidcolor.keyframes.Keyframe, checked, at the render size

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_id)

    @property
    def encode_key(self) -> str:
        return self.encode.key()


def fingerprint_file(path: str | os.PathLike, info: VideoInfo | None = None, full_below: int = 256 << 20) -> str:
    """Content fingerprint of the input, from the very file the decoder opens (both by exact path):
    the whole file below 256 MiB; above, its size plus 64 evenly spaced 1 MiB blocks (first and
    last included), so a film of 50 GB is fingerprinted in well under a second yet any re-encode or
    truncation changes it. A sampled fingerprint also covers the file's mtime and the probe's
    stream summary (``info``), so an edit between the samples that keeps the size still counts."""
    p = Path(path)
    st = p.stat()
    size = st.st_size
    h = hashlib.sha256(f"size={size};".encode())
    with open(p, "rb") as f:
        if size <= full_below:
            for block in iter(lambda: f.read(8 << 20), b""):
                h.update(block)
        else:
            n = 64
            for k in range(n):
                f.seek(k * (size - _SAMPLE_BLOCK) // (n - 1))
                h.update(f.read(_SAMPLE_BLOCK))
            h.update(f"mtime_ns={st.st_mtime_ns};".encode())
            if info is not None:
                h.update(json.dumps(stream_summary(info), sort_keys=True).encode())
    return h.hexdigest()


def stream_summary(info: VideoInfo) -> dict:
    """What the probe says the film is, without where it lies."""
    d = info.to_dict()
    d.pop("path")
    return d


def make_run_id(input_fingerprint: str, chroma_key: dict) -> str:
    blob = json.dumps({"input": input_fingerprint, "chroma": chroma_key}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_settings(chroma: ChromaSettings, encode: EncodeSettings):
    """Settings checked from the model's header alone; returns its ``ModelDescription``."""
    from vidcolor.colorizers import check_model_spec, describe_model

    try:
        check_model_spec(chroma.model)
    except (FileNotFoundError, ValueError) as e:
        raise BadInputError("--model", str(e)) from None
    palette = None
    if chroma.palette:
        from vidcolor.palette import Palette

        try:
            palette = Palette.parse(chroma.palette)
        except ValueError as e:
            raise BadInputError("--reference", str(e)) from None
        check_palette_strength(chroma.palette_strength)
    try:
        model = describe_model(chroma.model, palette)
    except (FileNotFoundError, ValueError) as e:
        raise BadInputError("--model", str(e)) from None
    if palette is not None and model.palette_refusal:
        raise BadInputError("--reference", model.palette_refusal)
    if not 0 <= chroma.stabilize_strength < 1:
        raise BadInputError("--stabilize-strength", f"{chroma.stabilize_strength} is outside 0-1 (1 excluded)")
    if chroma.keyframes and chroma.palette:
        raise BadInputError("--keyframes", "use either --keyframes or --reference, not both (keyframes lead the palette)")
    if chroma.render_size < 32:
        raise BadInputError("--render-size", f"{chroma.render_size} is too small (at least 32)")
    if chroma.max_chunk_frames < 2:
        raise BadInputError("--max-chunk-frames", "must be at least 2")
    if chroma.overlap_frames < 0:
        raise BadInputError("--overlap-frames", "must not be negative")
    if chroma.overlap_frames * 2 > chroma.max_chunk_frames:
        raise BadInputError(
            "--overlap-frames",
            f"{chroma.overlap_frames} is more than half of --max-chunk-frames {chroma.max_chunk_frames}",
        )
    if encode.codec not in CODECS:
        raise BadInputError("--codec", f"unknown codec {encode.codec!r} (choose from {', '.join(CODECS)})")
    lo, hi = QUALITY_RANGE
    if encode.crf is not None and not (lo <= encode.crf <= hi):
        raise BadInputError("--crf", f"{encode.crf} is outside {lo}-{hi}")
    return model


def keyframe_palette_refused(model_spec: str) -> bool:
    """The model cannot follow a palette, so keyframes cannot lead it (vidcolor.keyframes)."""
    from vidcolor.colorizers import describe_model
    from vidcolor.palette import Palette

    return describe_model(model_spec, Palette(((0, 0, 1.0),))).palette_refusal is not None


def check_palette_strength(strength: float) -> None:
    if not 0 <= strength <= MAX_PALETTE_STRENGTH:
        raise BadInputError("--reference-strength", f"{strength} is outside 0-{MAX_PALETTE_STRENGTH:g}")


def check_output(output_uri: str, input_uri: str, codec: str) -> None:
    suffix = output_suffix(output_uri)
    if suffix not in OUTPUT_CONTAINERS:
        raise BadInputError(output_uri, f"unsupported output container {suffix or '(none)'!r}; use {', '.join(OUTPUT_CONTAINERS)}")
    allowed = CODECS[codec].containers
    if suffix not in allowed:
        raise BadInputError(output_uri, f"codec {codec} cannot be stored in {suffix}; use {' or '.join(allowed)}")
    if is_s3_uri(output_uri):
        if output_uri.rstrip("/") == input_uri.rstrip("/"):
            raise BadInputError(output_uri, "output is the input; refusing to overwrite the source")
        bucket, key = split_s3_uri(output_uri)
        if not key:
            raise BadInputError(output_uri, "no object key in the output URI")
        bucket_store(output_uri)  # checks that the bucket exists and answers
        return
    out = Path(output_uri)
    if not is_s3_uri(input_uri):
        inp = Path(input_uri)
        if out.resolve() == inp.resolve() or (out.exists() and inp.exists() and os.path.samefile(out, inp)):
            raise BadInputError(output_uri, "output is the input; refusing to overwrite the source")
    if out.is_dir():
        raise BadInputError(output_uri, "is a directory; give a file name for the output")
    if not out.parent.resolve().is_dir():
        raise BadInputError(output_uri, f"output folder {str(out.parent)!r} does not exist")
    if not os.access(out.parent.resolve(), os.W_OK):
        raise BadInputError(output_uri, "output folder is not writable")


def stage_input(input_uri: str, cache_dir: Path) -> str:
    """A local path for the input: itself, or for s3:// a copy in the cache (keyed by ETag)."""
    if not is_s3_uri(input_uri):
        return input_uri
    from vidcolor.atomic import atomic_path

    store = bucket_store(input_uri)
    key = split_s3_uri(input_uri)[1]
    stat = store.stat(key)
    if stat is None:
        raise BadInputError(input_uri, "no such object")
    if stat.size == 0:
        raise BadInputError(input_uri, "is empty (0 bytes)")
    etag = stat.etag.replace("-", "_") or "noetag"
    dest = cache_dir / "inputs" / f"{etag}-{stat.size}" / Path(key).name
    if not dest.exists():
        with atomic_path(dest, tag="part") as tmp:
            store.download_file(key, tmp)
            # a single-part upload's ETag is the MD5 of its bytes: a copy that differs is not kept
            if re.fullmatch(r"[0-9a-f]{32}", stat.etag) and _md5_file(tmp) != stat.etag:
                raise RunFailedError(input_uri, "the downloaded copy does not match the object's ETag; run again")
    return str(dest)


def _md5_file(path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare_job(
    input_uri: str,
    output_uri: str,
    chroma: ChromaSettings,
    encode: EncodeSettings,
    store_uri: str | None = None,
) -> Job:
    """Check everything, stage and probe the input, and name the run: the one place a request
    becomes a Job. Builds no model: the identity comes from the weights header and file hash."""
    model = check_settings(chroma, encode)
    if not is_s3_uri(input_uri):
        check_readable_file(input_uri)
    check_output(output_uri, input_uri, encode.codec)
    # absolute: the path is what the decoder opens, whatever the working folder of a later task
    source_path = os.path.abspath(stage_input(input_uri, cache_root()))
    info = probe_video(source_path)
    suffix = output_suffix(output_uri)
    check_faithful(input_uri, info, encode.codec)
    if info.rotation and suffix not in ROTATION_CONTAINERS:
        # ffmpeg's matroska muxer drops the display matrix: the film would play sideways
        raise BadInputError(output_uri, f"the input is shown rotated by {info.rotation} degrees and {suffix} "
                                        f"cannot record that; use {' or '.join(ROTATION_CONTAINERS)}")
    fingerprint = fingerprint_file(source_path, info)
    keyframes = ()
    if chroma.keyframes:  # colour keyframes (vidcolor.keyframes): checked here, once
        from vidcolor.keyframes import film_frame_count, read_keyframes
        from vidcolor.render import render_size

        keyframes = read_keyframes(chroma.keyframes, (info.width, info.height), film_frame_count(info, source_path),
                                   render_size(info.width, info.height, chroma.render_size, model.size_multiple))
        if chroma.keyframe_palette and keyframe_palette_refused(chroma.model):
            chroma = replace(chroma, keyframe_palette=False)  # no scene borrows a palette it cannot follow
    return Job(
        input_uri=input_uri,
        output_uri=output_uri,
        source_path=source_path,
        info=info,
        fingerprint=fingerprint,
        model_identity=model.identity,
        size_multiple=model.size_multiple,
        run_id=make_run_id(fingerprint, chroma.key(model.identity)),
        store_uri=store_uri or default_store_uri(),
        chroma=chroma,
        encode=encode,
        keyframes=keyframes,
    )


INTERLACED = ("tt", "bb", "tb", "bt")


def check_faithful(name: str, info: VideoInfo, codec: str) -> None:
    """Refuse, with one line, what the pipeline cannot carry faithfully, and name what it leaves
    out (README: 'Inputs vidcolor refuses or warns about')."""
    if info.bit_depth > DEEP_BITS:
        raise BadInputError(name, f"has {info.bit_depth}-bit video ({info.pix_fmt}); vidcolor carries up to "
                                  f"{DEEP_BITS} bits and would drop the rest; convert it first if that is acceptable "
                                  "(e.g. ffmpeg -i IN -pix_fmt yuv420p10le -c:v ffv1 OUT.mkv)")
    if info.bit_depth > 8 and not CODECS[codec].deep_pix_fmt:
        raise BadInputError(name, f"has {info.bit_depth}-bit video ({info.pix_fmt}) and --codec {codec} writes 8-bit "
                                  f"only here; use --codec {' or '.join(deep_codecs())} to keep its {info.bit_depth} "
                                  "bits")
    if info.field_order in INTERLACED:
        raise BadInputError(name, f"is interlaced (field order {info.field_order}); vidcolor colorizes whole "
                                  "progressive frames and would lose the field order; deinterlace it first (e.g. "
                                  "ffmpeg -i IN -vf bwdif -c:v ffv1 OUT.mkv) and colorize that")
    if info.extra_video:
        from vidcolor import progress

        progress.notice(f"warning: {name}: video stream {', '.join(info.extra_video)} is left out; only the first "
                        "video stream is colorized and written")

