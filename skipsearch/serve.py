"""`skipsearch dashboard --serve`: the page on localhost, rebuilt while a study runs."""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path


def serve(directory: Path, port: int, every: float = 10.0) -> None:
    from .dashboard import write_dashboard

    stop = threading.Event()

    def rebuild() -> None:
        while not stop.wait(every):
            try:
                write_dashboard(directory, refresh=15)
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
            write_dashboard(directory)  # the file left behind does not reload itself
