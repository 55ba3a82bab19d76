"""A fault-injecting HTTP proxy on 127.0.0.1 in front of an S3 endpoint (moto_server), for tests.

Each request, with probability ``rate``, meets one fault instead of a clean pass: the connection
reset before the request reaches S3, or after S3 handled it (the client never hears that it
worked), a 503 SlowDown, a 500 InternalError, a stall before the request is passed on, or a
response body cut short (headers promise the full length, the connection closes half way).
One more kind, only when asked for: "stall-body", half the body and then silence for ``stall_seconds``.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("reset-before", "reset-after", "503", "500", "stall", "truncate")
_ALL_FAULTS = FAULTS + ("stall-body",)
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
_ERROR_BODY = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message>"
               "</Error>")


class FaultProxy:
    def __init__(self, upstream: str, rate: float = 0.1, stall_seconds: float = 2.0, seed: int = 16,
                 kinds: tuple[str, ...] = FAULTS, limit: int | None = None):
        """``kinds``: the faults that take turns; ``limit``: how many faults in all, then clean passes."""
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.rate, self.stall_seconds = rate, stall_seconds
        self.kinds, self.limit = kinds, limit
        self.random = random.Random(seed)  # which requests fail; the kinds take turns
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = b""
                    while True:
                        line = self.rfile.readline()
                        raw += line
                        size = int(line.split(b";")[0].strip(), 16)
                        if size == 0:
                            while True:  # trailers, then the blank line
                                trailer = self.rfile.readline()
                                raw += trailer
                                if trailer in (b"\r\n", b"\n", b""):
                                    return raw
                        raw += self.rfile.read(size + 2)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self):
                body = self._body()
                fault = proxy.pick()
                if fault == "reset-before":
                    return self._reset()
                if fault in ("503", "500"):
                    code = "SlowDown" if fault == "503" else "InternalError"
                    return self._reply(int(fault), {"Content-Type": "application/xml"},
                                       _ERROR_BODY.format(code=code).encode())
                if fault == "stall":
                    threading.Event().wait(proxy.stall_seconds)
                status, headers, data = proxy.forward(self.command, self.path, self.headers, body)
                if fault == "reset-after":
                    return self._reset()
                if fault in ("truncate", "stall-body") and len(data) > 1 and self.command != "HEAD":
                    self.send_response_only(status)
                    for k, v in headers:
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    if fault == "stall-body":
                        threading.Event().wait(proxy.stall_seconds)
                    return self._reset()
                if fault in ("truncate", "stall-body"):
                    proxy.count("clean")  # nothing to cut: counted as a clean pass
                self._reply(status, dict(headers), data, head=self.command == "HEAD")

            def _reply(self, status, headers, data, head=False):
                self.send_response_only(status)
                length = headers.pop("__length__", None)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", length if head and length is not None else str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            def _reset(self):
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                except OSError:
                    pass

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def pick(self) -> str:
        """Clean or, for ``rate`` of the requests, the next fault in turn (so every kind occurs)."""
        with self.lock:
            injected = sum(self.counts[f] for f in _ALL_FAULTS)
            if self.random.random() < self.rate and (self.limit is None or injected < self.limit):
                fault = self.kinds[injected % len(self.kinds)]
            else:
                fault = "clean"
            self.counts[fault] += 1
            return fault

    def count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in ("connection", "proxy-connection")}
            conn.request(method, path, body=body, headers=out)
            resp = conn.getresponse()
            data = resp.read()
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
            if method == "HEAD":
                kept.append(("__length__", resp.getheader("Content-Length", "0")))
            return resp.status, kept, data
        finally:
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
