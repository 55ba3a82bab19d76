"""Encode frames of our own making (source luma + new chroma) into a segment file with PyAV.

Segments are NUT files: NUT keeps any time base, so every frame keeps its source timestamp
exactly (VFR included) and the concat step needs no arithmetic on timestamps.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from vidcolor.media.paths import ff_url
from vidcolor.media.probe import VideoInfo
from vidcolor.media.codecs import CODECS, encoder_options
from vidcolor.settings import EncodeSettings

_RANGE = {False: 1, True: 2}  # AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG
_SPACE = {"bt709": 1, "bt601": 6}  # AVCOL_SPC_BT709, AVCOL_SPC_SMPTE170M


class SegmentEncoder:
    def __init__(self, path: str, info: VideoInfo, settings: EncodeSettings):
        codec = CODECS[settings.codec]
        # a 10-bit source keeps its 10 bits (the job refuses codecs without a deep format)
        encoder, pix_fmt = codec.encoder, codec.deep_pix_fmt if info.bit_depth > 8 else codec.pix_fmt
        self.frame_format = "yuv420p10le" if info.bit_depth > 8 else "yuv420p"
        self.info = info
        self.pix_fmt = pix_fmt
        self.time_base = Fraction(info.time_base)
        self.container = av.open(ff_url(path), "w", format="nut")
        stream = self.container.add_stream(encoder, rate=Fraction(info.frame_rate))
        stream.width, stream.height = info.width, info.height
        stream.pix_fmt = pix_fmt
        stream.time_base = self.time_base
        cc = stream.codec_context
        cc.time_base = self.time_base
        cc.color_range = _RANGE[info.full_range]
        cc.colorspace = _SPACE[info.matrix]
        stream.options = encoder_options(settings.codec, settings.crf, settings.preset)
        self.stream = stream

    def write(self, y: np.ndarray, cb: np.ndarray, cr: np.ndarray, pts: int, duration: int | None) -> None:
        h, w = y.shape
        yuv = np.concatenate([y.reshape(-1), cb.reshape(-1), cr.reshape(-1)]).reshape(h * 3 // 2, w)
        frame = av.VideoFrame.from_ndarray(yuv, format=self.frame_format)
        frame.color_range = _RANGE[self.info.full_range]
        frame.colorspace = _SPACE[self.info.matrix]
        if self.pix_fmt != self.frame_format:
            frame = frame.reformat(format=self.pix_fmt)
        frame.pts = pts
        frame.time_base = self.time_base
        if duration:
            frame.duration = duration
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken encoder must not hide the first error
            pass
