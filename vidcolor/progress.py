"""Progress reporting without coupling stages to a UI: stages call ``report``; the CLI installs a
sink (a rich progress bar), tests and services leave the silent default. ``notice`` is one line a
person should read (waiting for a lease, a takeover, a stream left out): stderr by default."""

from __future__ import annotations

import sys
import threading


class ProgressSink:
    def start(self, stage: str, total: int) -> None: ...
    def advance(self, stage: str, n: int) -> None: ...
    def finish(self, stage: str) -> None: ...

    def notice(self, text: str) -> None:
        print(f"vidcolor: {text}", file=sys.stderr, flush=True)


_sink: ProgressSink = ProgressSink()
_lock = threading.Lock()


def set_sink(sink: ProgressSink | None) -> None:
    global _sink
    _sink = sink or ProgressSink()


def start(stage: str, total: int) -> None:
    with _lock:
        _sink.start(stage, total)


def advance(stage: str, n: int) -> None:
    if n:
        with _lock:
            _sink.advance(stage, n)


def finish(stage: str) -> None:
    with _lock:
        _sink.finish(stage)


def advancer(stage: str):
    return lambda n: advance(stage, n)


def notice(text: str) -> None:
    with _lock:
        _sink.notice(text)
