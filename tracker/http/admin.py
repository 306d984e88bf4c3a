"""The admin listener: ``/metrics`` and any future admin endpoint on a port of its own.

gunicorn listens on ``TRACKER_BIND`` (the public port) and on ``TRACKER_ADMIN_BIND``
(``127.0.0.1:9090`` by default; empty turns it off), and every worker serves both.
Admin routes answer only to requests that came in on the admin port: on the public
one they are an unknown path, 404. Only admin routes pay for the check, so the
tracking paths cost nothing more. ``/healthz`` and ``/readyz`` answer on both ports:
load balancers probe the port they send traffic to.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import falcon

DEFAULT_BIND = "127.0.0.1:9090"


def admin_bind() -> str:
    """Return the admin listener's address: ``TRACKER_ADMIN_BIND``, or ``127.0.0.1:9090``."""
    return os.environ.get("TRACKER_ADMIN_BIND", DEFAULT_BIND).strip()


def bind_port(bind: str) -> int:
    """Return the port of a ``host:port`` address; 0 for an empty one (no admin listener).

    Raises:
        ValueError: The address has no numeric port (a ``unix:`` socket, a typo).
    """
    if not bind:
        return 0
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"TRACKER_ADMIN_BIND must be host:port, not {bind!r}")
    return int(port)


def local_port(env: dict[str, Any]) -> int:
    """Return the port of the listener a request came in on.

    gunicorn's own workers put the listener's port in ``SERVER_PORT``; meinheld puts
    a constant there, so its connection's socket is asked instead.
    """
    client = env.get("meinheld.client")
    if client is None:
        return int(env.get("SERVER_PORT") or 0)
    sock = socket.socket(fileno=client.get_fd())
    try:
        return sock.getsockname()[1]
    finally:
        sock.detach()


class AdminRoute:
    """Serve a resource's GET only on the admin port; elsewhere it does not exist.

    Args:
        resource: The resource to guard (its ``on_get`` is called).
        port: The admin port; ``None`` serves every port (an app driven in-process,
            with no listener), 0 none (the admin listener is off).
    """

    def __init__(self, resource: Any, port: int | None) -> None:
        self.resource = resource
        self.port = port

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer as the resource does on the admin port, 404 on any other."""
        if self.port is not None and (self.port == 0 or local_port(req.env) != self.port):
            raise falcon.HTTPNotFound()
        self.resource.on_get(req, resp)
