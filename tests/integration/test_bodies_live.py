"""Request bodies over real HTTP: chunked, gzip, Expect: 100-continue, and HEAD on health routes.

Each case runs against both worker classes (meinheld, as built by
scripts/meinheld.sh with its patches, and gunicorn's gthread), on raw sockets so
that what the client sees is exact: the interim ``100 Continue`` before the
body is sent, the end of a chunked body, the bytes after a HEAD answer.
"""

from __future__ import annotations

import gzip
import json
import socket
import time

import pytest

from tests.integration.live import Server, consume
from tests.integration.rawhttp import Reply, converse

pytestmark = [pytest.mark.integration]

HOST = b"Host: tracker\r\n"
JSON = b"Content-Type: application/json\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.fixture(scope="module", params=["meinheld", "gthread"])
def server(request, tmp_path_factory, broker):
    server = Server(
        tmp_path_factory.mktemp(request.param), broker, TRACKER_WORKER_CLASS=request.param
    )
    server.setup_topics()
    server.start()
    yield server
    server.stop()


def chunked(body: bytes, size: int = 7) -> bytes:
    """``body`` in chunks of ``size`` bytes, as a client streams it."""
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def post(path: str, headers: bytes, body: bytes) -> bytes:
    return (
        b"POST "
        + path.encode()
        + b" HTTP/1.1\r\n"
        + HOST
        + headers
        + b"Connection: close\r\n\r\n"
        + body
    )


def consumed(server: Server, event_id: str) -> dict:
    """The one conversion event with ``event_id`` in the server's topic."""
    events = consume([server.topic("tracker-conversions")], 1, settle=1.0)
    (event,) = [e for _, _, e in events if e["id"] == event_id]
    return event


def answer(reply: Reply) -> tuple[int, dict]:
    (status,) = reply.statuses
    return status, json.loads(reply.body)


def test_a_chunked_conversion_is_read_whole(server):
    body = json.dumps({"cid": "c1", "order": "chunked-1", "value": "12.5", "currency": "EUR"})
    reply = converse(
        server.port, post("/conv", JSON + b"Transfer-Encoding: chunked\r\n", chunked(body.encode()))
    )
    status, accepted = answer(reply)
    assert (status, accepted["status"]) == (200, "accepted")
    event = consumed(server, accepted["id"])
    assert event["dimensions"]["order_id"] == "chunked-1"
    assert event["dimensions"]["currency"] == "EUR"
    assert event["metrics"]["value_micros"] == 12_500_000


def test_a_chunked_body_over_the_limit_is_a_413_not_a_drop(server):
    body = json.dumps({"cid": "c1", "order": "x" * 70_000}).encode()
    status, refused = answer(
        converse(
            server.port,
            post("/conv", JSON + b"Transfer-Encoding: chunked\r\n", chunked(body, 8192)),
        )
    )
    assert (status, refused["reason"]) == (413, "body_too_large")


def test_a_chunked_batch_is_read_whole(server):
    items = [{"event": "win", "aid": f"chunk-{i}", "price": "1.5"} for i in range(20)]
    body = chunked(json.dumps(items).encode(), 100)
    status, results = answer(
        converse(server.port, post("/events", JSON + b"Transfer-Encoding: chunked\r\n", body))
    )
    assert status == 200
    assert [r["status"] for r in results["results"]] == ["accepted"] * 20


def test_expect_100_continue_is_answered_before_the_body(server):
    body = json.dumps({"cid": "c1", "order": "expect-1"}).encode()
    head = post("/conv", JSON + b"Expect: 100-continue\r\nContent-Length: %d\r\n" % len(body), b"")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        sock.settimeout(0.5)  # curl waits a second before it sends the body anyway
        started = time.monotonic()
        interim = b""
        while len(interim) < len(CONTINUE):
            interim += sock.recv(len(CONTINUE) - len(interim))
        waited = time.monotonic() - started
        assert interim == CONTINUE
        sock.settimeout(10)
        sock.sendall(body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert waited < 0.5
    reply = Reply(data, "eof")
    assert answer(reply)[0] == 200


def test_expect_100_continue_with_the_body_at_once_is_answered(server):
    body = json.dumps({"cid": "c1", "order": "expect-2"}).encode()
    headers = JSON + b"Expect: 100-continue\r\nContent-Length: %d\r\n" % len(body)
    reply = converse(server.port, post("/conv", headers, body))
    assert reply.statuses[-1] == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_head_on_a_health_route_answers_like_get_without_a_body(server, path):
    get = converse(
        server.port,
        b"GET " + path.encode() + b" HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
    )
    head = converse(
        server.port,
        b"HEAD " + path.encode() + b" HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
    )
    assert (head.statuses, get.statuses) == ([200], [200])
    assert head.data.partition(b"\r\n\r\n")[2] == b""
    assert get.headers["content-length"] == str(len(get.body))
    if path == "/healthz":
        assert head.headers["content-length"] == get.headers["content-length"]
    else:
        # /readyz says each collector's live state ("broker up; spool 0 of ..."), which
        # may change between the two requests (a first probe, a spool): HEAD still says
        # how long its own body would have been.
        assert int(head.headers["content-length"]) > len('{"status": "ready"}')


def gzipped(extra: bytes = b"") -> bytes:
    return JSON + b"Content-Encoding: gzip\r\n" + extra


def test_a_gzip_body_is_inflated(server):
    body = gzip.compress(json.dumps({"cid": "c1", "order": "gzip-1", "currency": "GBP"}).encode())
    reply = converse(
        server.port, post("/conv", gzipped(b"Content-Length: %d\r\n" % len(body)), body)
    )
    status, accepted = answer(reply)
    assert status == 200
    assert consumed(server, accepted["id"])["dimensions"]["currency"] == "GBP"


def test_a_chunked_gzip_bomb_is_a_413(server):
    bomb = gzip.compress(b'{"cid": "c1", "order": "' + b"0" * 50_000_000 + b'"}', 9)
    reply = converse(
        server.port, post("/conv", gzipped(b"Transfer-Encoding: chunked\r\n"), chunked(bomb, 16384))
    )
    status, refused = answer(reply)
    assert (status, refused["reason"]) == (413, "body_too_large")


@pytest.mark.parametrize(
    ("coding", "body", "status", "reason"),
    [
        (b"gzip", b"\x1f\x8b not really gzip", 400, "invalid_gzip"),
        (b"br", b"\x8b\x05\x80{}\x03", 415, "unsupported_content_encoding"),
        (b"deflate", b"x\x9c\xab\xae\x05\x00\x01u\x00\xf9", 415, "unsupported_content_encoding"),
    ],
)
def test_a_corrupt_or_unknown_coding_is_refused(server, coding, body, status, reason):
    headers = JSON + b"Content-Encoding: " + coding + b"\r\nContent-Length: %d\r\n" % len(body)
    got, refused = answer(converse(server.port, post("/conv", headers, body)))
    assert (got, refused["reason"]) == (status, reason)
