"""`skipsearch dashboard --serve`: the live page, and the study as JSON at /api/results.

A background thread watches the study (the SQLite file and its journal: size and mtime,
a stat call) and rebuilds the data only when it changed; every request is then answered
from memory, gzip-compressed when the client accepts it, with an ETag, so a page polling
every few seconds costs the server a dictionary lookup (304 Not Modified) until a trial
finishes. A study folder that disappears while serving is reported (503, one line on
stderr), and the server waits for it to come back.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError

LOCAL = ("127.0.0.1", "localhost", "::1")
POLL_MS = 3000  # how often the page asks
WATCH_S = 1.0  # how often the server looks at the study file


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """UserError for a port out of range or already taken (checked before anything is written)."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port: {port}; allowed: 1-65535")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            hint = f"a free port, e.g. {_free_port(host)}" if err.errno == 98 else "a port this user may open, e.g. 8765"
            raise UserError(f"--port: {port} on {host} is not free ({err.strerror}); allowed: {hint}") from None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Snapshot:
    """The study's data as served: JSON bytes, their gzip and their version (ETag)."""

    body: bytes = b""
    gz: bytes = b""
    etag: str = ""
    error: str = ""  # why there is no fresh data (the folder went away, ...)
    built_s: float = 0.0  # how long the last rebuild took
    page: bytes = b""
    lock: threading.Lock = field(default_factory=threading.Lock)


class Watcher:
    """Rebuilds the snapshot when the study's files change (payload.py does the work)."""

    def __init__(self, directory: Path, name: str | None, importance: bool = True) -> None:
        self.directory, self.name, self.importance = directory, name, importance
        self.snapshot = Snapshot()
        self.seen: tuple | None = None
        self.stop = threading.Event()

    def signature(self) -> tuple:
        out = []
        for suffix in ("", "-wal", "-journal"):
            try:
                st = (self.directory / f"study.db{suffix}").stat()
                out.append((suffix, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((suffix, None))
        return tuple(out)

    def refresh(self, force: bool = False) -> None:
        from .page import build_page
        from .payload import payload
        from .results import load_results

        sig = self.signature()
        if sig == self.seen and not force:
            return
        start = time.perf_counter()
        try:
            data = payload(load_results(self.directory, self.name), importance=self.importance)
        except Exception as err:  # noqa: BLE001 - a vanished or half-written study must not stop the server
            message = (
                f"{self.directory}: cannot read the study now ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
            )
            if message != self.snapshot.error:
                print(f"dashboard: {message}; waiting for it", file=sys.stderr, flush=True)
            self.snapshot.error, self.seen = message, None
            return
        body = json.dumps(data, allow_nan=False, default=str).encode()
        snap = Snapshot(body, gzip.compress(body, 5), '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
        snap.built_s = time.perf_counter() - start
        snap.page = build_page(data, {"poll_ms": POLL_MS}).encode()
        if self.snapshot.error:
            print(f"dashboard: {self.directory}: readable again", file=sys.stderr, flush=True)
        self.snapshot, self.seen = snap, sig

    def run(self) -> None:
        while not self.stop.wait(WATCH_S):
            self.refresh()


def handler_for(watcher: Watcher):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            snap = watcher.snapshot
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html", "/dashboard.html") and snap.page:
                return self._send(200, snap.page, "text/html; charset=utf-8")
            if path == "/api/results":
                if snap.error:
                    return self._send(503, json.dumps({"error": snap.error}).encode(), "application/json")
                if not snap.body:
                    return self._send(503, b'{"error": "starting"}', "application/json")
                if self.headers.get("If-None-Match") == snap.etag:
                    return self._send(304, b"", None, snap.etag)
                gz = "gzip" in self.headers.get("Accept-Encoding", "")
                return self._send(200, snap.gz if gz else snap.body, "application/json", snap.etag, gz)
            self._send(404, b'{"error": "not found; try / or /api/results"}', "application/json")

        def _send(self, code: int, body: bytes, kind: str | None, etag: str = "", gz: bool = False) -> None:
            self.send_response(code)
            if kind:
                self.send_header("Content-Type", kind)
            if etag:
                self.send_header("ETag", etag)
            if gz:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)


def serve(directory: Path, port: int, name: str | None = None, host: str = "127.0.0.1") -> None:
    """Serve the live page until Ctrl-C; then write the offline file once more."""
    from .dashboard import write_dashboard

    if host not in LOCAL:
        print(
            f"warning: serving on {host}: anyone who can reach this machine on port {port} can read the study"
            " (no authentication); use an SSH tunnel to 127.0.0.1 where you can",
            file=sys.stderr,
        )
    watcher = Watcher(directory, name)
    watcher.refresh(force=True)
    with _Server((host, port), handler_for(watcher)) as server:
        threading.Thread(target=watcher.run, daemon=True).start()
        shown = f"[{host}]" if ":" in host else host
        print(f"serving http://{shown}:{server.server_address[1]}/ (live; Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            watcher.stop.set()
            try:
                write_dashboard(directory, name=name)  # the offline file, as the study is now
            except UserError as err:
                print(f"dashboard: {err}", file=sys.stderr)
