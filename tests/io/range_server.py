"""A loopback HTTP file server with byte ranges, a set latency per request and a bandwidth cap.

It stands in for a cloud object store in tests and in ``bench/remote_read.py``: ``GET`` and ``HEAD`` of files
under a root folder, ``Range: bytes=a-b`` answered with 206 (one range per request, as object stores do),
HTTP/1.1 keep-alive. Every request waits ``latency`` seconds before its answer starts (a round trip to a
distant server); the answers' bytes share one link of ``mbit`` Mbit/s (a token bucket over all
connections). ``GET /_stats`` answers ``{"requests": n, "bytes": n, "GET": n, "HEAD": n}`` (file
requests, body bytes sent and requests by method since the start or the last ``POST /_reset``).

It always runs as its own process (GDAL may hold the GIL while it waits for an answer, so a server
thread in the reader's interpreter could deadlock): ``with serve(root, latency=0.05, mbit=100) as
server: server.url, server.stats()``, or ``python -m tests.io.range_server ROOT --latency-ms 50 --mbit
100``, which prints ``http://127.0.0.1:PORT`` on its first line and serves until stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


class _Link:
    """A shared link of ``bits_per_s``: each chunk waits for its transmission slot (None: unlimited)."""

    def __init__(self, bits_per_s: float | None) -> None:
        self.rate = None if not bits_per_s else bits_per_s / 8.0
        self.free_at = 0.0
        self.lock = threading.Lock()

    def send(self, nbytes: int) -> None:
        if self.rate is None:
            return
        with self.lock:
            start = max(time.monotonic(), self.free_at)
            self.free_at = start + nbytes / self.rate
            done = self.free_at
        delay = done - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class RangeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, root: Path, *, latency: float = 0.0, mbit: float | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root.resolve()
        self.latency = latency
        self.link = _Link(mbit * 1e6 if mbit else None)
        self.lock = threading.Lock()
        self.requests = 0
        self.sent = 0
        self.methods: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, nbytes: int) -> None:
        with self.lock:
            self.sent += nbytes

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"requests": self.requests, "bytes": self.sent, **self.methods}


class _Handler(BaseHTTPRequestHandler):
    server: RangeServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (~40 ms on Linux), a latency the bench did not ask for.
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/_reset":
            with self.server.lock:
                self.server.requests = self.server.sent = 0
                self.server.methods.clear()
            self._reply(200, b"{}")
        else:
            self._reply(404)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if self.path == "/_stats":
            self._reply(200, json.dumps(self.server.stats()).encode())
            return
        with self.server.lock:
            self.server.requests += 1
            self.server.methods[self.command] = self.server.methods.get(self.command, 0) + 1
        if self.server.latency > 0:
            time.sleep(self.server.latency)
        path = (self.server.root / unquote(urlparse(self.path).path).lstrip("/")).resolve()
        if self.server.root not in path.parents or not path.is_file():
            self._reply(404)
            return
        size = path.stat().st_size
        start, end, status = 0, size - 1, 200
        match = _RANGE.match(self.headers.get("Range", "").strip())
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:  # a suffix range: the last n bytes
                start = max(size - int(match.group(2)), 0)
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with path.open("rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    break
                self.server.link.send(len(chunk))
                self.wfile.write(chunk)
                self.server.count(len(chunk))
                left -= len(chunk)


@dataclass(frozen=True)
class Served:
    """A running server process: its URL, and its counters read over HTTP."""

    url: str

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/_reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@contextlib.contextmanager
def serve(root: Path, *, latency: float = 0.0, mbit: float | None = None, nice: int = 0) -> Iterator[Served]:
    """Serve ``root`` from a child process on a free loopback port; yield it; stop it after.

    ``nice`` lowers the server's CPU priority: on one machine its work then waits for the client's
    compute instead of taking cores from it, as a server on another machine would not.

    A process, not a thread: GDAL may hold the GIL while it waits for an answer (opening a file does),
    so a server in the reader's own interpreter could never answer.
    """
    command = [sys.executable, "-m", "tests.io.range_server", str(root), "--latency-ms", str(latency * 1000)]
    if mbit:
        command += ["--mbit", str(mbit)]
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        env=env,
        cwd=repo,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            raise RuntimeError(f"the range server did not start (exit {proc.poll()})")
        yield Served(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--mbit", type=float, default=None)
    args = parser.parse_args()
    server = RangeServer(args.root, latency=args.latency_ms / 1000.0, mbit=args.mbit)
    print(server.url, flush=True)
    sys.stdout.close()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    server.serve_forever()


if __name__ == "__main__":
    main()
