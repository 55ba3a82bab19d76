"""Concat + mux, and the atomic hand-over of the finished film to the output name."""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

from vidcolor.errors import RunFailedError
from vidcolor.media.mux import count_video_frames, join_segments, mux_with_source, output_suffix
from vidcolor.media.probe import VideoInfo
from vidcolor.runstate import RunLayout
from vidcolor.stages.split import load_frame_table
from vidcolor.store import ObjectStore, is_s3_uri, split_s3_uri


def finalize_output(
    store: ObjectStore,
    layout: RunLayout,
    plan: dict,
    encode_key: str,
    codec: str,
    output_uri: str,
    source_info: VideoInfo,
) -> dict:
    n_chunks = len(plan["chunks"])
    suffix = output_suffix(output_uri)
    with tempfile.TemporaryDirectory(prefix="vidcolor-final-") as work:
        seg_paths = []
        for i in range(n_chunks):
            key = layout.segment(encode_key, i)
            path = store.local_path(key)
            if path is None:
                path = os.path.join(work, f"{i:05d}.nut")
                store.download_file(key, path)
            seg_paths.append(str(path))
        # mov for mp4/mov outputs (exact time base), matroska for mkv (its own precision anyway)
        joined = os.path.join(work, "video.mov" if suffix in (".mp4", ".mov") else "video.mkv")
        frames = load_frame_table(store, layout).to_pydict()
        first_pts = [frames["pts"][c["core_start"]] for c in plan["chunks"]]
        durations = dict(zip(frames["pts"], frames["duration"]))
        packets, shift = join_segments(seg_paths, joined, first_pts, Fraction(source_info.time_base), durations)
        if packets != plan["total_frames"]:
            raise RunFailedError(output_uri, f"joined video has {packets} frames, source has {plan['total_frames']}")

        if is_s3_uri(output_uri):
            staged = os.path.join(work, "output" + suffix)
            mux_with_source(joined, shift, source_info, staged, suffix, codec)
            _check_frames(staged, plan, output_uri)
            from vidcolor.store.s3 import s3_client

            bucket, key = split_s3_uri(output_uri)
            s3_client().upload_file(staged, bucket, key)  # visible only once complete
            size = os.path.getsize(staged)
        else:
            dest = Path(output_uri)
            # Temp name beside the output (same filesystem, so the rename is atomic), hidden, and
            # never the output's own name.
            tmp = dest.with_name(f".{dest.name}.vidcolor-partial-{os.getpid()}{suffix}")
            try:
                mux_with_source(joined, shift, source_info, str(tmp), suffix, codec)
                _check_frames(str(tmp), plan, output_uri)
                size = tmp.stat().st_size
                os.replace(tmp, dest)
            finally:
                if tmp.exists():
                    tmp.unlink()
    return {"output": output_uri, "frames": plan["total_frames"], "bytes": size}


def _check_frames(path: str, plan: dict, output_uri: str) -> None:
    n = count_video_frames(path)
    if n != plan["total_frames"]:
        raise RunFailedError(output_uri, f"output has {n} frames, source has {plan['total_frames']}")
