"""What a client sees when meinheld's own parser refuses a request, over real HTTP.

Some requests never reach the app: meinheld refuses them while parsing. Built by
scripts/meinheld.sh with scripts/meinheld/lingering-close.patch, it answers each
with its own status, ``Connection: close`` and a one-line plain-text reason,
then closes lingering (write side shut, the rest of the request read and
discarded), so the client reads the answer and a clean end, never a reset.
The client keeps its write side open and sends the rest of the request (a
body of 200 KB, more than meinheld reads at once) as a browser or an SDK does:
an unpatched meinheld closes with those bytes unread, and the kernel resets.
"""

from __future__ import annotations

import socket

import pytest

from tests.integration.rawhttp import converse

pytestmark = [pytest.mark.integration]

HOST = b"Host: x\r\n"
BODY = b"z" * 200_000
WITH_BODY = b"Content-Length: %d\r\n\r\n" % len(BODY)
GOOD = b"GET /imp?cid=c1 HTTP/1.1\r\n" + HOST + b"\r\n"

#: name -> (the parts a client sends, one after the other; the status meinheld answers)
CASES = {
    "10 KB request line": (
        [b"GET /imp?cid=" + b"a" * 10_000 + b" HTTP/1.1\r\n" + HOST + b"\r\n"],
        414,
    ),
    "100 KB request line": (
        [b"GET /imp?cid=" + b"a" * 100_000 + b" HTTP/1.1\r\n" + HOST + b"\r\n"],
        414,
    ),
    "10 KB request line with a body": (
        [b"POST /conv?cid=" + b"a" * 10_000 + b" HTTP/1.1\r\n" + HOST + WITH_BODY + BODY],
        414,
    ),
    "20 KB header": (
        [b"GET /imp?cid=c1 HTTP/1.1\r\n" + HOST + b"X-Pad: " + b"p" * 20_000 + b"\r\n\r\n"],
        431,
    ),
    "20 KB header with a body": (
        [
            b"POST /conv HTTP/1.1\r\n"
            + HOST
            + b"X-Pad: "
            + b"p" * 20_000
            + b"\r\n"
            + WITH_BODY
            + BODY
        ],
        431,
    ),
    "QUERY without a body": ([b"QUERY /imp HTTP/1.1\r\n" + HOST + b"\r\n"], 405),
    "QUERY with a body": ([b"QUERY /events HTTP/1.1\r\n" + HOST + WITH_BODY + BODY], 405),
    "FOO with a body sent later": (
        [b"FOO /conv HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\n", b"hello"],
        405,
    ),
    "not HTTP": ([b"GET /imp HTTP/9x\r\n\r\n", b"more"], 400),
    "body over meinheld's own limit": (
        [b"POST /conv HTTP/1.1\r\n" + HOST + b"Content-Length: 50000000\r\n\r\n" + BODY],
        413,
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_a_refusal_is_a_clear_answer_and_a_clean_close(server, name):
    parts, status = CASES[name]
    reply = converse(server.port, *parts)
    assert (reply.statuses, reply.ending) == ([status], "eof")
    headers = reply.headers
    assert headers["connection"] == "close"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["server"] == "tracker"
    assert 10 < len(reply.body) < 100 and reply.body.endswith(b".\n")
    assert b"<html" not in reply.data and b"meinheld" not in reply.data


def test_a_good_request_pipelined_after_a_refused_one_is_not_answered_but_closed_cleanly(server):
    reply = converse(server.port, b"QUERY /imp HTTP/1.1\r\n" + HOST + b"\r\n" + GOOD)
    assert (reply.statuses, reply.ending) == ([405], "eof")
    later = converse(server.port, b"QUERY /imp HTTP/1.1\r\n" + HOST + b"\r\n", GOOD)
    assert (later.statuses, later.ending) == ([405], "eof")


def test_lingering_connections_do_not_hold_up_the_workers(server):
    # Twenty refused clients that neither close nor stop sending, then a good request.
    socks = []
    try:
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"QUERY /events HTTP/1.1\r\n" + HOST + WITH_BODY + BODY[:50_000])
            socks.append(sock)
        # Answered within converse's timeout, while all twenty linger.
        good = b"GET /imp?cid=c1 HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
        assert converse(server.port, good).statuses == [200]
        for sock in socks:
            assert sock.recv(64).startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    finally:
        for sock in socks:
            sock.close()


def test_a_client_that_keeps_sending_is_cut_off_after_a_megabyte(server):
    # meinheld discards 1 MB, then closes. What the client manages to send before
    # it sees the reset also fills the kernel's buffers on both sides, which
    # loopback autotunes (observed 4.1 MB once, usually less): a small send
    # buffer keeps the client's share down, and the bound is far under the 40 MB
    # a server that never cut off would take.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"QUERY /events HTTP/1.1\r\n" + HOST + b"Content-Length: 99999999\r\n\r\n")
        sent, cut = 0, False
        while sent < 40_000_000:
            try:
                sock.sendall(b"z" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            sent += 65536
    assert cut and sent < 12_000_000, sent
