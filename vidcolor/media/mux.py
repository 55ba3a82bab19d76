"""Join segments by stream copy, then bring back the source's audio, subtitles, chapters and
metadata (all stream-copied, so an audio packet's bytes are the source's bytes)."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av

from vidcolor.errors import DiskFullError, RunFailedError, is_disk_full
from vidcolor.media.paths import AV_INPUT_OPTIONS, FF_INPUT_ARGS, ff_url
from vidcolor.media.probe import VideoInfo

_TEXT_SUBS_FOR_MKV = {"subrip", "srt", "ass", "ssa", "webvtt", "hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle"}
_MUXER = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}


def join_segments(
    segment_paths: list[str],
    dest: str,
    first_pts: list[int],
    source_time_base: Fraction,
    durations: dict[int, int],
) -> tuple[int, Fraction]:
    """Packets of every segment, in order, with the source's pts and durations, into ``dest``
    (.mov or .mkv: both keep every packet's duration, so the last frame lasts as long as the
    source's). Returns the number of video packets written and the shift (seconds) the muxer
    added to ``dest``'s timestamps, which the final mux takes back off.

    A muxer may shift a segment's timestamps to keep its dts non-negative; ``first_pts`` (each
    segment's first frame in the source, in ``source_time_base``) undoes that shift exactly.

    Demuxers leave the first dts of a B-frame stream unknown, so dts is rebuilt: the k-th packet
    in decode order gets the k-th smallest pts minus one delay D shared by all segments (the
    largest reorder delay seen), which keeps dts <= pts and strictly increasing across joins.
    """
    pts_by_segment: list[list[int]] = []
    shifts: list[int] = []
    delay = 0
    for path, first in zip(segment_paths, first_pts):
        with av.open(ff_url(path), options=AV_INPUT_OPTIONS) as seg:
            stream = seg.streams.video[0]
            pts = [p.pts for p in seg.demux(stream) if p.pts is not None]
            expected = round(Fraction(first) * source_time_base / stream.time_base)
        shift = min(pts) - expected
        pts = [p - shift for p in pts]
        shifts.append(shift)
        order = sorted(pts)
        delay = max([delay] + [o - p for o, p in zip(order, pts)])
        pts_by_segment.append(order)

    out = av.open(ff_url(dest), "w", format=_MUXER[Path(dest).suffix])
    out_stream = None
    count = 0
    last_dts = None
    try:
        for path, order, shift in zip(segment_paths, pts_by_segment, shifts):
            with av.open(ff_url(path), options=AV_INPUT_OPTIONS) as seg:
                in_stream = seg.streams.video[0]
                if out_stream is None:
                    out_stream = out.add_stream_from_template(in_stream)
                    out_stream.time_base = in_stream.time_base
                k = 0
                for packet in seg.demux(in_stream):
                    if packet.pts is None:
                        continue  # the demuxer's end-of-stream flush packet
                    packet.pts = packet.pts - shift
                    packet.dts = order[k] - delay
                    src_pts = round(packet.pts * in_stream.time_base / source_time_base)
                    if durations.get(src_pts):
                        packet.duration = round(durations[src_pts] * source_time_base / in_stream.time_base)
                    k += 1
                    if last_dts is not None and packet.dts <= last_dts:
                        raise RunFailedError(path, f"segment timestamps go backwards (dts {packet.dts} after {last_dts})")
                    last_dts = packet.dts
                    packet.stream = out_stream
                    out.mux(packet)
                    count += 1
    finally:
        out.close()
    with av.open(ff_url(dest), options=AV_INPUT_OPTIONS) as joined:
        stream = joined.streams.video[0]
        first = min(p.pts for p in joined.demux(stream) if p.pts is not None)
        shift = Fraction(first) * stream.time_base - Fraction(first_pts[0]) * source_time_base
    return count, shift


def mux_with_source(video_path: str, video_shift: Fraction, source: VideoInfo, dest: str, dest_suffix: str, codec: str) -> None:
    """ffmpeg: our video + the source's other streams and metadata -> ``dest`` (a temp name).
    Timestamps are copied (-copyts) so picture and sound keep the source's exact alignment."""
    muxer = _MUXER[dest_suffix]
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-copyts",
            *FF_INPUT_ARGS, "-itsoffset", f"{float(-video_shift):.6f}", "-i", ff_url(video_path),
            *FF_INPUT_ARGS, "-i", ff_url(source.path),
            "-map", "0:v:0", "-map", "1:a?", "-map", "1:s?",
            "-map_metadata", "1", "-map_metadata:s:v:0", "1:s:v:0", "-map_chapters", "1",
            "-c", "copy"]
    if source.subtitle_streams:
        if muxer in ("mp4", "mov"):
            args += ["-c:s", "mov_text"]
        elif not set(source.subtitle_codecs) <= _TEXT_SUBS_FOR_MKV:
            args += ["-c:s", "srt"]
    if muxer == "matroska":
        args += ["-map", "1:t?"]  # attachments (fonts for styled subtitles)
    if codec == "hevc" and muxer in ("mp4", "mov"):
        args += ["-tag:v", "hvc1"]
    if source.rotation:
        args += ["-metadata:s:v:0", f"rotate={source.rotation}"]
    if muxer in ("mp4", "mov"):
        args += ["-movflags", "+faststart"]
    args += ["-f", muxer, ff_url(dest)]
    proc = subprocess.run(args, capture_output=True, text=True)
    # ffmpeg 5.1 exits 0 when writing the trailer or closing the file fails (a full disk)
    if proc.returncode != 0 or "Error writing trailer" in proc.stderr or "Error closing file" in proc.stderr:
        if is_disk_full(proc.stderr):
            raise DiskFullError(str(Path(dest).parent))
        tail = (proc.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
        raise RunFailedError(dest, f"muxing failed: {tail}")


def count_video_frames(path: str) -> int:
    proc = subprocess.run(
        ["ffprobe", "-v", "error", *FF_INPUT_ARGS, "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", ff_url(path)],
        capture_output=True, text=True,
    )
    try:
        return int(proc.stdout.strip().splitlines()[0].strip(","))
    except (ValueError, IndexError):
        return -1


def output_suffix(path: str) -> str:
    return Path(path.split("?")[0]).suffix.lower()
