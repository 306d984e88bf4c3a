"""Hostile bytes at real gunicorn + meinheld: refused cheaply with a 4xx, never a 5xx or a crash.

Huge numbers go to every numeric field of every shipped path, from each source
it reads (the fields and values of ``tests/test_hostile.py``).
"""

from __future__ import annotations

import json
import random
import urllib.parse

import pytest

from tests.integration.live import raw
from tests.test_hostile import HUGE, JSON_HUGE, NUMERIC_FIELDS, REQUIRED

pytestmark = [pytest.mark.integration]


CASES = {
    "long_url": (b"GET /imp?cid=" + b"a" * 6000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    # meinheld refuses one header line over 8 KB itself (431, plain text: see
    # test_meinheld_refusals.py); many smaller ones reach the tracker's own limit.
    "huge_header_line": (
        b"GET /imp?cid=c HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 20000 + b"\r\n\r\n",
        431,
    ),
    "many_headers": (
        b"GET /imp?cid=c HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-Pad-%d: " % i + b"p" * 7000 + b"\r\n" for i in range(3))
        + b"\r\n",
        431,
    ),
    "bad_utf8_query": (b"GET /imp?cid=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "bad_escape": (b"GET /conv?cid=%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "raw_high_bytes": (b"GET /imp?cid=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "bad_utf8_path": (b"GET /vast/%c3%28 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "body_too_large": (
        b"POST /conv HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 70000\r\n\r\n" + b" " * 70000,
        413,
    ),
    "huge_declared_body": (
        b"POST /conv HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 900000000\r\n\r\n{}",
        413,
    ),
    "invalid_json_utf8": (
        b"POST /conv HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 9\r\n\r\n{"c":"\xff"}',
        400,
    ),
    "batch_not_array": (
        b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        400,
    ),
    "method": (b"DELETE /imp HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    # The price error quotes the value into X-Tracker-Error: escaped, never dropped.
    "non_latin1_error_header": (
        b"GET /imp?cid=c1&price=%E2%82%AC HTTP/1.1\r\nHost: x\r\n\r\n",
        200,
    ),
    "line_break_error_header": (
        b"GET /vast/start?cid=c1&price=%0D%0AX:1 HTTP/1.1\r\nHost: x\r\n\r\n",
        200,
    ),
    "deep_json": (
        b"POST /win HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 50000\r\n\r\n" + b"[" * 50000,
        400,
    ),
    "unknown": (b"GET /wp-login.php HTTP/1.1\r\nHost: x\r\n\r\n", 404),
}


@pytest.mark.parametrize("name", CASES)
def test_hostile_request_gets_its_4xx(server, name):
    data, status = CASES[name]
    assert raw(server.port, data) == status


def test_random_garbage_never_gets_a_5xx_and_the_workers_survive(server):
    rng = random.Random(20261128)
    workers = server.workers()
    statuses = []
    for _ in range(600):
        target = rng.choice(
            [b"/imp", b"/conv", b"/click", b"/vast/start", b"/bill", b"/events", b"/"]
        )
        query = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        method = rng.choice([b"GET", b"POST", b"PUT", b"BREW"])
        request = (
            method
            + b" "
            + target
            + b"?"
            + query.replace(b" ", b"+").replace(b"\r", b"").replace(b"\n", b"")
        )
        request += b" HTTP/1.1\r\nHost: x\r\nContent-Type: " + rng.choice(
            [b"application/json", b"text/x"]
        )
        request += b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        statuses.append(raw(server.port, request))
    assert not [s for s in statuses if s is not None and s >= 500]
    assert sum(1 for s in statuses if s is not None) > 500
    assert server.workers() == workers, "a worker died"
    assert server.get("/healthz")[0] == 200


@pytest.mark.parametrize(
    ("path", "spec", "source"),
    NUMERIC_FIELDS,
    ids=[f"{p.name}.{s.name}.{src}" for p, s, src in NUMERIC_FIELDS],
)
def test_a_huge_number_in_any_numeric_field_gets_its_4xx(server, path, spec, source):
    route = path.route.replace("{event}", "start")
    keys = {f.key for f in path.fields}
    required = {k: v for k, v in REQUIRED.items() if k in keys and k != spec.key}
    if source == "query":
        texts = [urllib.parse.quote(v) for v in HUGE]
        requests = [
            f"GET {route}?{urllib.parse.urlencode(required)}&{spec.key}={t} HTTP/1.1\r\n"
            "Host: x\r\n\r\n".encode()
            for t in texts
        ]
    else:
        values = [b'"' + v.encode() + b'"' for v in HUGE] + JSON_HUGE
        rest = json.dumps(required).encode()[1:-1]
        bodies = [
            b'{"%s": %s%s%s}' % (spec.key.encode(), v, b", " if rest else b"", rest) for v in values
        ]
        requests = [
            f"POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(b)}\r\n\r\n".encode()
            + b
            for b in bodies
        ]
    for data in requests:
        status = raw(server.port, data)
        assert status == (200 if path.response.always else 400), data[:200]
