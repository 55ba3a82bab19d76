"""Concat + mux, and the atomic hand-over of the finished film to the output name."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from fractions import Fraction

from vidcolor.atomic import PARTIAL_OUTPUT_TAG, atomic_path
from vidcolor.errors import RunFailedError
from vidcolor.failpoints import failpoint
from vidcolor.media.mux import count_video_frames, join_segments, mux_with_source, output_suffix
from vidcolor.media.probe import VideoInfo
from vidcolor.plan import Plan
from vidcolor.state import RunLayout, load_frame_table
from vidcolor.store import ObjectStore, bucket_store, is_s3_uri, split_s3_uri


def finalize_output(
    store: ObjectStore,
    layout: RunLayout,
    plan: Plan,
    encode_key: str,
    codec: str,
    output_uri: str,
    source_info: VideoInfo,
    before_publish: Callable[[], None] = lambda: None,
) -> dict:
    """Join, mux and check the film, then publish it under ``output_uri`` (rename, or the upload
    completing). ``before_publish`` runs just before: it raises to stop (a lost lease)."""
    suffix = output_suffix(output_uri)
    with tempfile.TemporaryDirectory(prefix=layout.temp_prefix("final")) as work:
        seg_paths = []
        for i in range(len(plan.chunks)):
            key = layout.segment(encode_key, i)
            path = store.local_path(key)
            if path is None:
                path = os.path.join(work, f"{i:05d}.nut")
                store.download_file(key, path)
            seg_paths.append(str(path))
        # mov for mp4/mov outputs (exact time base), matroska for mkv (its own precision anyway)
        joined = os.path.join(work, "video.mov" if suffix in (".mp4", ".mov") else "video.mkv")
        frames = load_frame_table(store, layout).to_pydict()
        first_pts = [frames["pts"][c.core_start] for c in plan.chunks]
        durations = dict(zip(frames["pts"], frames["duration"]))
        packets, shift = join_segments(seg_paths, joined, first_pts, Fraction(source_info.time_base), durations)
        if packets != plan.total_frames:
            raise RunFailedError(output_uri, f"joined video has {packets} frames, source has {plan.total_frames}")

        if is_s3_uri(output_uri):
            staged = os.path.join(work, "output" + suffix)
            mux_with_source(joined, shift, source_info, staged, suffix, codec)
            failpoint("mux")
            _check_frames(staged, plan, output_uri)
            before_publish()
            bucket_store(output_uri).upload_file(staged, split_s3_uri(output_uri)[1])  # visible only once complete
            size = os.path.getsize(staged)
        else:
            # Temp name beside the output (same filesystem, so the rename is atomic), hidden, and
            # never the output's own name.
            with atomic_path(output_uri, tag=PARTIAL_OUTPUT_TAG) as tmp:
                mux_with_source(joined, shift, source_info, str(tmp), suffix, codec)
                failpoint("mux")
                _check_frames(str(tmp), plan, output_uri)
                size = tmp.stat().st_size
                before_publish()
    return {"output": output_uri, "frames": plan.total_frames, "bytes": size}


def _check_frames(path: str, plan: Plan, output_uri: str) -> None:
    n = count_video_frames(path)
    if n < 0:
        raise RunFailedError(output_uri, "the muxed film cannot be read back (ffprobe fails on it)")
    if n != plan.total_frames:
        raise RunFailedError(output_uri, f"output has {n} frames, source has {plan.total_frames}")
