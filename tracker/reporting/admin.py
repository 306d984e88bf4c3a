"""The loader's admin port: health, readiness, Prometheus metrics, and the report.

``tracker report`` asks here when the loader holds the embedded database (chdb
lets one process open a data directory). ``GET /report?from=&to=&by=&campaign=``
answers ``{"database": URL, "rows": [...]}``; ``GET /report.html`` the HTML page.
Bound to loopback by default (``TRACKER_LOADER_ADMIN_BIND``, ``127.0.0.1:9091``).
"""

from __future__ import annotations

import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import page, query
from .store import StoreError

log = logging.getLogger(__name__)

DEFAULT_BIND = "127.0.0.1:9091"


def admin_bind() -> str:
    """Return ``TRACKER_LOADER_ADMIN_BIND`` or ``127.0.0.1:9091``."""
    return os.environ.get("TRACKER_LOADER_ADMIN_BIND", "").strip() or DEFAULT_BIND


def split_bind(bind: str) -> tuple[str, int]:
    """Split ``host:port``.

    Raises:
        ValueError: No numeric port.
    """
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"the loader's admin address must be host:port, not {bind!r}")
    return host or "127.0.0.1", int(port)


class AdminServer:
    """A small threaded HTTP server over a running :class:`~tracker.reporting.loader.Loader`."""

    def __init__(self, loader: Any, bind: str) -> None:
        self.loader = loader
        handler = type("Handler", (_Handler,), {"loader": loader})
        self.httpd = ThreadingHTTPServer(split_bind(bind), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> AdminServer:
        """Serve in a background thread."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    loader: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("admin: " + format, *args)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == "/healthz":
                self._send(200, "text/plain", b"ok\n")
            elif url.path == "/readyz":
                ready = self.loader.ready
                self._send(
                    200 if ready else 503, "text/plain", b"ready\n" if ready else b"not ready\n"
                )
            elif url.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(self.loader.metrics.registry))
            elif url.path in ("/report", "/report.html"):
                self._report(url.path, params)
            else:
                self._send(404, "application/json", b'{"title":"404 Not Found"}')
        except query.ReportError as ex:
            self._send(
                400,
                "application/json",
                orjson.dumps({"title": "400 Bad Request", "description": str(ex)}),
            )
        except StoreError as ex:
            self._send(
                503,
                "application/json",
                orjson.dumps({"title": "503 Service Unavailable", "description": str(ex)[:500]}),
            )

    def _report(self, path: str, params: dict[str, str]) -> None:
        store = self.loader.store
        if store is None:
            raise StoreError("the loader has not opened the reporting database yet")
        request = query.make_request(
            params.get("from"), params.get("to"), params.get("by"), params.get("campaign")
        )
        if path == "/report.html":
            self._send(200, "text/html; charset=utf-8", page.render(store, request).encode())
            return
        rows = query.run(store, request)
        self._send(200, "application/json", orjson.dumps({"database": store.url, "rows": rows}))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
