"""A failure-injecting HTTP proxy for tests: forwards to a real server (e.g. `rustac serve` on loopback).

Each request fails with probability ``failure_rate`` (seeded): an HTTP 500, an HTTP 503, or a dropped
connection (closed without an answer), chosen at random. ``retry_after`` adds that header to 503 answers;
``fail_first`` fails that many requests before any random draw. Upstream URLs in answers are rewritten to
the proxy's, so clients following links (``next`` pages, the search endpoint) keep going through it.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


@dataclass
class ProxyStats:
    requests: int = 0
    failures: int = 0
    kinds: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _failure(self) -> str | None:
        srv = self.server
        with srv.lock:
            srv.stats.requests += 1
            if srv.fail_first > 0:
                srv.fail_first -= 1
                kind: str | None = srv.first_kind
            elif srv.rng.random() < srv.failure_rate:
                kind = srv.rng.choice(["500", "503", "drop"])
            else:
                kind = None
            if kind is not None:
                srv.stats.failures += 1
                srv.stats.kinds.append(kind)
        return kind

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        kind = self._failure()
        if kind == "drop":
            self.close_connection = True
            return
        if kind is not None:
            self.send_response(int(kind))
            if kind == "503" and self.server.retry_after is not None:
                self.send_header("Retry-After", str(self.server.retry_after))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        up = urlparse(self.server.upstream)
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read().replace(self.server.upstream.encode(), self.server.url.encode())
        conn.close()
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _handle
    do_POST = _handle


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, *, failure_rate: float, seed: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream.rstrip("/")
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.failure_rate = failure_rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stats = ProxyStats()
        self.retry_after: int | None = None
        self.fail_first = 0
        self.first_kind = "503"


@contextlib.contextmanager
def flaky_proxy(
    upstream: str,
    *,
    failure_rate: float = 0.3,
    seed: int = 0,
    retry_after: int | None = None,
    fail_first: int = 0,
    first_kind: str = "503",
) -> Iterator[_ProxyServer]:
    """Run the proxy in a thread for the block; yields the server (``.url``, ``.stats``)."""
    server = _ProxyServer(upstream, failure_rate=failure_rate, seed=seed)
    server.retry_after = retry_after
    server.fail_first = fail_first
    server.first_kind = first_kind
    # serve_forever checks for `shutdown` every poll_interval: its default 0.5 s was most of a short run
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
