"""`skipsearch dashboard --serve`: the page on localhost, rebuilt while a study runs."""

from __future__ import annotations

import functools
import http.server
import socket
import sys
import threading
from pathlib import Path

from .errors import UserError


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """UserError for a port out of range or already taken (checked before anything is written)."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port: {port}; allowed: 1-65535")
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as err:
            hint = f"a free port, e.g. {_free_port(host)}"
            raise UserError(f"--port: {port} on {host} is not free ({err.strerror}); allowed: {hint}") from None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(directory: Path, port: int, every: float = 10.0, name: str | None = None) -> None:
    from .dashboard import write_dashboard

    stop = threading.Event()

    def rebuild() -> None:
        while not stop.wait(every):
            try:
                write_dashboard(directory, refresh=15, name=name)
            except Exception as err:  # a half-written study must not stop the server
                print(f"dashboard rebuild failed: {err}", file=sys.stderr)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        threading.Thread(target=rebuild, daemon=True).start()
        print(f"serving http://127.0.0.1:{server.server_address[1]}/dashboard.html (Ctrl-C stops)", file=sys.stderr)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            write_dashboard(directory, name=name)  # the file left behind does not reload itself
