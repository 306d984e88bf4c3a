"""The admin listener and the Server header, on real gunicorn workers of both classes."""

from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("worker_class", ["meinheld", "gthread"])
def test_metrics_on_the_admin_port_only_and_no_server_name(server_factory, worker_class):
    server = server_factory(TRACKER_WORKER_CLASS=worker_class, TRACKER_WORKERS="1").start()
    status, headers, _ = server.get("/imp?cid=admin-check")
    assert (status, headers["server"]) == (200, "tracker")
    status, headers, body = server.get("/metrics")
    assert (status, headers["server"]) == (404, "tracker")
    assert body == server.get("/nowhere")[2] and b'"reason":"unknown_path"' in body
    assert server.get("/healthz")[0] == 200
    status, _, body = server.admin_get("/metrics")
    assert status == 200
    assert b'tracker_requests_total{outcome="accepted",path="impression"}' in body
    # What the HTTP server refuses itself, before the app, names no server either
    # (meinheld says "tracker", gunicorn's own error pages have no Server header).
    status, headers, _ = server.get("/imp?cid=x", headers={"Content-Length": "x"})
    assert (status, headers.get("server", "tracker")) == (400, "tracker")


def test_admin_listener_off(server_factory):
    server = server_factory(TRACKER_ADMIN_BIND="", TRACKER_WORKERS="1").start()
    assert server.get("/metrics")[0] == 404
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", server.admin_port)) != 0
