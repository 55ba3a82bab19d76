"""Named points where a test freezes vidcolor so it can be killed exactly there.

``VIDCOLOR_FAILPOINT=NAME`` makes the process stop at the point NAME: it writes its pid to
``$VIDCOLOR_FAILPOINT_FILE`` (when set) and sleeps until killed. Unset (always, outside the kill
tests), a point costs one environment lookup. Points: ``split`` (the first chunk source written,
no plan yet), ``colorize`` (the first chunk colorized, others not), ``stitch`` (the first segment
written), ``mux`` (the film muxed under its temp name, not yet renamed), ``s3-upload`` (an S3
upload under way, bytes sent, not complete).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def failpoint(name: str) -> None:
    if os.environ.get("VIDCOLOR_FAILPOINT") != name:
        return
    marker = os.environ.get("VIDCOLOR_FAILPOINT_FILE")
    if marker:
        Path(marker).write_text(str(os.getpid()))
    while True:
        time.sleep(3600)
