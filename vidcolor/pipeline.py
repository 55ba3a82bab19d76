"""Turning a user's request into a checked, identified job, before anything heavy starts.

Every problem with the input, output or settings surfaces here as one BadInputError line, so bad
input never starts Ray or Prefect and never leaves a file behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vidcolor.colorizers import check_model_spec, load_colorizer
from vidcolor.errors import BadInputError
from vidcolor.media.mux import output_suffix
from vidcolor.media.probe import VideoInfo, check_readable_file, probe_video
from vidcolor.runstate import RunLayout, fingerprint_file, make_run_id
from vidcolor.settings import CODECS, OUTPUT_CONTAINERS, ChromaSettings, EncodeSettings
from vidcolor.store import cache_root, default_store_uri, is_s3_uri, split_s3_uri


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

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_id)

    @property
    def encode_key(self) -> str:
        return self.encode.key()


MAX_PALETTE_STRENGTH = 3.0


def palette_problem(model_spec: str, palette) -> str | None:
    """Why the model of ``model_spec`` cannot follow ``palette``, or None. Cheap: a test
    colorizer is asked itself; GAN weights are judged by their file's header, not loaded."""
    from vidcolor.palette import head_refusal

    if model_spec.startswith("test:"):
        from vidcolor.colorizers.testing import load_test_colorizer

        try:
            load_test_colorizer(model_spec).set_palette(palette)
        except ValueError as e:
            return str(e)
        return None
    if model_spec == "default":
        return None
    import json

    from safetensors import safe_open

    with safe_open(model_spec, framework="pt") as f:
        head = json.loads((f.metadata() or {}).get("config", "{}")).get("head", "bins")
    return head_refusal(model_spec, head)


def check_settings(chroma: ChromaSettings, encode: EncodeSettings) -> None:
    try:
        check_model_spec(chroma.model)
    except (FileNotFoundError, ValueError) as e:
        raise BadInputError("--model", str(e)) from None
    if chroma.palette:
        from vidcolor.palette import Palette

        try:
            palette = Palette.parse(chroma.palette)
        except ValueError as e:
            raise BadInputError("--reference", str(e)) from None
        if not 0 <= chroma.palette_strength <= MAX_PALETTE_STRENGTH:
            raise BadInputError("--reference-strength", f"{chroma.palette_strength} is outside 0-{MAX_PALETTE_STRENGTH:g}")
        problem = palette_problem(chroma.model, palette)
        if problem:
            raise BadInputError("--reference", problem)
    if not 0 <= chroma.stabilize_strength < 1:
        raise BadInputError("--stabilize-strength", f"{chroma.stabilize_strength} is outside 0-1 (1 excluded)")
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
    if encode.crf is not None and not (0 <= encode.crf <= 51):
        raise BadInputError("--crf", f"{encode.crf} is outside 0-51")


ROTATION_CONTAINERS = (".mp4", ".mov")  # containers that keep a display matrix


def check_output(output_uri: str, input_uri: str, codec: str) -> None:
    suffix = output_suffix(output_uri)
    if suffix not in OUTPUT_CONTAINERS:
        raise BadInputError(output_uri, f"unsupported output container {suffix or '(none)'!r}; use {', '.join(OUTPUT_CONTAINERS)}")
    allowed = CODECS[codec][2]
    if suffix not in allowed:
        raise BadInputError(output_uri, f"codec {codec} cannot be stored in {suffix}; use {' or '.join(allowed)}")
    if is_s3_uri(output_uri):
        if output_uri.rstrip("/") == input_uri.rstrip("/"):
            raise BadInputError(output_uri, "output is the input; refusing to overwrite the source")
        from vidcolor.store.s3 import check_bucket

        bucket, key = split_s3_uri(output_uri)
        if not key:
            raise BadInputError(output_uri, "no object key in the output URI")
        check_bucket(output_uri)
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
    from botocore.exceptions import ClientError

    from vidcolor.store.s3 import check_bucket, s3_client

    check_bucket(input_uri)
    bucket, key = split_s3_uri(input_uri)
    try:
        head = s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError:
        raise BadInputError(input_uri, "no such object") from None
    if head.get("ContentLength", 0) == 0:
        raise BadInputError(input_uri, "is empty (0 bytes)")
    etag = head.get("ETag", "").strip('"').replace("-", "_") or "noetag"
    dest = cache_dir / "inputs" / f"{etag}-{head['ContentLength']}" / Path(key).name
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        s3_client().download_file(bucket, key, str(tmp))
        os.replace(tmp, dest)
    return str(dest)


def check_request(
    input_uri: str,
    output_uri: str,
    chroma: ChromaSettings,
    encode: EncodeSettings,
) -> tuple[str, VideoInfo]:
    """Settings, output and input checked, the input staged and probed: (local path, probe)."""
    check_settings(chroma, encode)
    if not is_s3_uri(input_uri):
        check_readable_file(input_uri)
    check_output(output_uri, input_uri, encode.codec)
    source_path = stage_input(input_uri, cache_root())
    info = probe_video(source_path)
    suffix = output_suffix(output_uri)
    if info.rotation and suffix not in ROTATION_CONTAINERS:
        # ffmpeg's matroska muxer drops the display matrix: the film would play sideways
        raise BadInputError(output_uri, f"the input is shown rotated by {info.rotation} degrees and {suffix} "
                                        f"cannot record that; use {' or '.join(ROTATION_CONTAINERS)}")
    return source_path, info


def prepare_job(
    input_uri: str,
    output_uri: str,
    chroma: ChromaSettings,
    encode: EncodeSettings,
    store_uri: str | None = None,
) -> Job:
    source_path, info = check_request(input_uri, output_uri, chroma, encode)
    try:
        colorizer = load_colorizer(chroma.model)
    except (FileNotFoundError, ValueError) as e:
        raise BadInputError("--model", str(e)) from None
    if chroma.palette:
        from vidcolor.palette import Palette

        try:  # the same call the actors make: a model that cannot follow it fails here, not on a node
            colorizer.set_palette(Palette.parse(chroma.palette), chroma.palette_strength)
        except ValueError as e:
            raise BadInputError("--reference", str(e)) from None
    fingerprint = fingerprint_file(source_path)
    run_id = make_run_id(fingerprint, chroma.key(colorizer.identity))
    return Job(
        input_uri=input_uri,
        output_uri=output_uri,
        source_path=source_path,
        info=info,
        fingerprint=fingerprint,
        model_identity=colorizer.identity,
        size_multiple=colorizer.size_multiple,
        run_id=run_id,
        store_uri=store_uri or default_store_uri(),
        chroma=chroma,
        encode=encode,
    )


def archive_output_uri(input_uri: str, output_prefix: str, suffix: str = ".mp4") -> str:
    """Where a batch writes a film: OUTPUT_PREFIX/<input stem>-colour<suffix>, local or s3://."""
    stem = Path(input_uri.rstrip("/").rsplit("/", 1)[-1]).stem
    name = f"{stem}-colour{suffix}"
    if is_s3_uri(output_prefix):
        return output_prefix.rstrip("/") + "/" + name
    return str(Path(output_prefix) / name)
