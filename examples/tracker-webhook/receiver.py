"""Print the batches the ``webhook`` collector POSTs: ``python receiver.py HOST:PORT``.

A stand-in for a real endpoint, for trying the plugin out (docs/quickstart.md).
"""

from __future__ import annotations

import contextlib
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Receiver(BaseHTTPRequestHandler):
    """Answer 204 to every POST and print its body, one line per batch."""

    def do_POST(self) -> None:
        """Print the batch and acknowledge it."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        print(body.decode(), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep stdout for the batches."""


def main() -> None:
    """Serve on the address given as the only argument."""
    host, _, port = sys.argv[1].rpartition(":")
    print(f"listening on {host}:{port}", flush=True)
    # Ctrl-C ends it quietly.
    with contextlib.suppress(KeyboardInterrupt):
        HTTPServer((host, int(port)), Receiver).serve_forever()


if __name__ == "__main__":
    main()
