"""A keep-alive connection carries at most TRACKER_KEEPALIVE_REQUESTS requests (meinheld).

A connection stays with the worker that accepted it; closing it now and then
lets a client's connections spread again over the workers
(scripts/meinheld/keepalive-requests.patch, docs/performance.md#stalls).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.live import Server
from tests.integration.rawhttp import converse

pytestmark = [pytest.mark.integration]

GET = b"GET /healthz HTTP/1.1\r\nHost: tracker\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory, broker):
    server = Server(tmp_path_factory.mktemp("keepalive"), broker, TRACKER_KEEPALIVE_REQUESTS="3")
    server.setup_topics()
    server.start()
    yield server
    server.stop()


def statuses(data: bytes) -> list[int]:
    # Answers follow each other's bodies directly: no line start to anchor on.
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def connection_headers(data: bytes) -> list[str]:
    return [m.decode().lower() for m in re.findall(rb"(?mi)^Connection: *([^\r]*)\r$", data)]


def test_the_third_answer_closes_the_connection(server):
    started = time.monotonic()
    reply = converse(server.port, GET, GET, GET, pause=0.05)
    assert statuses(reply.data) == [200, 200, 200]
    assert connection_headers(reply.data) == ["keep-alive", "keep-alive", "close"]
    assert reply.ending == "eof"
    assert time.monotonic() - started < 2  # closed by the bound, not by the 5 s idle timeout


def test_a_client_that_asks_for_close_still_gets_it_at_once(server):
    reply = converse(server.port, GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    assert statuses(reply.data) == [200]
    assert connection_headers(reply.data) == ["close"]
