"""Request bodies in-process: chunked, gzip and other codings, and HEAD on the health routes.

The same over real HTTP, through meinheld and gunicorn, is in
``tests/integration/test_bodies_live.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib

import falcon.testing
import pytest

from tests import ROOT
from tests.apps import build_app
from tracker.config import load_file
from tracker.http.encoding import decode_body
from tracker.intake.refusals import Rejected

LIMIT = 65536  # server.max_body_bytes of the shipped config


@pytest.fixture(scope="module")
def app():
    tracker, memory = build_app(load_file(ROOT / "config" / "tracker.yaml", {}))
    yield tracker.wsgi, memory
    tracker.close(1.0)


@pytest.fixture(autouse=True)
def empty(app):
    for collector in app[1].values():
        collector.events.clear()


def call(wsgi, path: str, body: bytes, headers: dict[str, str], chunked: bool = False):
    """POST ``body``: with a ``Content-Length``, or chunked as meinheld and gunicorn pass it on.

    Both servers undo the chunking, give the app no ``CONTENT_LENGTH`` and
    mark the end of the input with ``wsgi.input_terminated``.
    """
    environ = falcon.testing.create_environ(path, method="POST", body=body, headers=headers)
    if chunked:
        del environ["CONTENT_LENGTH"]
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
    environ["wsgi.input"] = io.BytesIO(body)
    answer = []
    out = b"".join(wsgi(environ, lambda status, headers, exc_info=None: answer.append(status)))
    return int(answer[0].split()[0]), json.loads(out) if out else None


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"cid": "c1", "value": "12.5", "currency": "EUR", "quantity": 2}', JSON),
        (b"cid=c1&value=12.5&currency=EUR&quantity=2", FORM),
    ],
)
def test_a_chunked_body_is_read(app, body, headers):
    wsgi, memory = app
    status, answer = call(wsgi, "/conv", body, headers, chunked=True)
    assert (status, answer["status"]) == (200, "accepted")
    (event,) = memory["kafka"].events
    assert event.dimensions["currency"] == "EUR"
    assert (event.metrics["value_micros"], event.metrics["quantity"]) == (12_500_000, 2)


def test_a_chunked_body_over_the_limit_is_a_413(app):
    body = json.dumps({"cid": "c1", "order": "x" * LIMIT}).encode()
    status, answer = call(app[0], "/conv", body, JSON, chunked=True)
    assert (status, answer["reason"]) == (413, "body_too_large")
    assert answer["description"] == f"The body is over the {LIMIT}-byte limit."
    assert app[1]["kafka"].events == []


def test_a_chunked_batch_is_read_within_its_own_limit(app):
    items = [{"event": "win", "aid": f"a{i}", "price": "1.5"} for i in range(3)]
    status, answer = call(app[0], "/events", json.dumps(items).encode(), JSON, chunked=True)
    assert status == 200
    assert [r["status"] for r in answer["results"]] == ["accepted"] * 3


def test_a_chunked_body_from_a_server_that_does_not_end_it_is_refused_not_dropped(app):
    environ = falcon.testing.create_environ(
        "/conv", method="POST", body=b'{"cid": "c1"}', headers=JSON
    )
    del environ["CONTENT_LENGTH"]
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    environ.pop("wsgi.input_terminated", None)
    answer = []
    out = b"".join(app[0](environ, lambda status, headers, exc_info=None: answer.append(status)))
    assert answer == ["411 Length Required"]
    assert json.loads(out)["reason"] == "length_required"


GZIP = {**JSON, "Content-Encoding": "gzip"}


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "GZIP"])
def test_a_gzip_body_is_inflated(app, coding, chunked):
    body = gzip.compress(b'{"cid": "c1", "value": "3", "currency": "GBP"}')
    status, _ = call(app[0], "/conv", body, {**JSON, "Content-Encoding": coding}, chunked)
    assert status == 200
    (event,) = app[1]["kafka"].events
    assert (event.dimensions["currency"], event.metrics["value_micros"]) == ("GBP", 3_000_000)


def test_a_gzip_form_is_inflated(app):
    body = gzip.compress(b"cid=c1&currency=CHF")
    status, _ = call(app[0], "/conv", body, {**FORM, "Content-Encoding": "gzip"})
    assert status == 200
    assert app[1]["kafka"].events[0].dimensions["currency"] == "CHF"


def test_a_gzip_bomb_is_a_413_after_inflating_no_more_than_the_limit(app):
    bomb = gzip.compress(b'{"cid": "c1", "order": "' + b"0" * 50_000_000 + b'"}', 9)
    assert len(bomb) < LIMIT
    status, answer = call(app[0], "/conv", bomb, GZIP)
    assert (status, answer["reason"]) == (413, "body_too_large")
    assert answer["description"] == f"The body is over the {LIMIT}-byte limit once inflated."


def test_inflating_stops_at_the_limit():
    # A megabyte of zeros under a 1000-byte limit: at most 1001 bytes are ever inflated.
    bomb = gzip.compress(b"0" * 1_000_000)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert len(inflater.decompress(bomb, 1001)) == 1001
    with pytest.raises(Rejected) as refused:
        decode_body(bomb, "gzip", 1000)
    assert refused.value.status == 413
    assert decode_body(gzip.compress(b"0" * 1000), "gzip", 1000) == b"0" * 1000


def test_gzip_members_one_after_the_other_are_one_body():
    body = gzip.compress(b'{"cid": ') + gzip.compress(b'"c1"}')
    assert decode_body(body, "gzip", 100) == b'{"cid": "c1"}'


@pytest.mark.parametrize(
    "body",
    [
        b"not gzip at all",
        gzip.compress(b'{"cid": "c1"}')[:-6],  # cut short
        gzip.compress(b'{"cid": "c1"}') + b"trailing junk",
        b"\x1f\x8b" + bytes(20),
    ],
    ids=["not gzip", "cut short", "trailing junk", "broken header"],
)
def test_a_corrupt_gzip_body_is_a_400(app, body):
    status, answer = call(app[0], "/conv", body, GZIP)
    assert (status, answer["reason"]) == (400, "invalid_gzip")
    assert answer["description"] == "The body is not valid gzip, or is cut short."


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("deflate", zlib.compress(b'{"cid": "c1"}')),
        ("br", b"\x8b\x05\x80{}\x03"),
        ("zstd", b"(\xb5/\xfd"),
        ("compress", b"\x1f\x9d"),
        ("gzip, gzip", gzip.compress(gzip.compress(b"{}"))),
        ("snappy\u00e9", b"x"),
    ],
)
def test_other_codings_are_a_415_naming_gzip(app, coding, body):
    headers = {**JSON, "Content-Encoding": coding.encode().decode("latin-1")}
    status, answer = call(app[0], "/conv", body, headers)
    assert (status, answer["reason"]) == (415, "unsupported_content_encoding")
    assert answer["description"].startswith("The body's Content-Encoding must be gzip (or none)")
    assert answer["description"].isascii()


def test_identity_is_no_coding(app):
    assert (
        call(app[0], "/conv", b'{"cid": "c1"}', {**JSON, "Content-Encoding": "identity"})[0] == 200
    )


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_head_on_the_health_routes_answers_like_get_without_a_body(app, path):
    client = falcon.testing.TestClient(app[0])
    get, head = client.simulate_get(path), client.simulate_head(path)
    assert (head.status_code, get.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["content-type"] == get.headers["content-type"]
