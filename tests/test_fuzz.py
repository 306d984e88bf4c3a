"""Random requests at the app, in-process: never a 500, never a crash.

Hypothesis drives methods, paths (configured routes and junk), raw query
strings (valid, malformed escapes, invalid UTF-8), headers and bodies at the
WSGI callable with the shipped config. The integration suite repeats a
smaller run against real gunicorn.
"""

from __future__ import annotations

import io
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import ROOT
from tests.apps import build_app
from tracker.config import load_file

ROUTES = [
    "/imp",
    "/click",
    "/conv",
    "/vast/start",
    "/vast/error",
    "/vast/x",
    "/win",
    "/bill",
    "/loss",
    "/events",
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    "/imp/",
    "/conv/x",
]
METHODS = ["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH"]
KEYS = ["cid", "crid", "aid", "iid", "bid", "price", "value", "order", "currency", "quantity"]
KEYS += ["clid", "url", "sig", "kid", "exp", "loss", "ph", "off", "dur", "err", "gdpr"]
KEYS += ["gdpr_consent", "event", "x", "ts", "wt"]

latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=60)
escape = st.integers(0, 255).map(lambda b: f"%{b:02X}")
broken = st.sampled_from(["%", "%G1", "%f", "%%", "%zz", "%C3", "%C3%28", "%FF%FE", "%00"])
# Any text, percent-encoded as UTF-8: non-Latin-1 values reach the fields (and their errors).
utf8 = st.text(min_size=1, max_size=5).map(lambda t: quote(t.encode("utf-8", "surrogatepass")))
# Numbers past every field's maximum, and number texts Python would read and the tracker does not.
huge = st.sampled_from(
    ["9" * 30, "-" + "9" * 30, "1" + "0" * 400, "9007199254740993", "99999999999999.5", "1e400"]
) | st.sampled_from(["1E2", "1_0", "%D9%A1%D9%A0", "%EF%BC%91", "+5", "0x10", "NaN"])
value = st.lists(st.one_of(latin1, escape, broken, utf8, huge), max_size=6).map("".join) | huge
query = st.lists(st.tuples(st.sampled_from(KEYS) | latin1, value), max_size=8).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
)
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**15, max_value=10**1000)
    | st.floats()
    | st.text(max_size=20)
    | huge,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
json_body = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), json_value, max_size=6),
    json_value,
).map(lambda v: json.dumps(v, allow_nan=True).encode())
body = st.one_of(st.binary(max_size=300), json_body, query.map(lambda q: q.encode("latin-1")))
content_type = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "",
    ]
)
headers = st.dictionaries(
    st.sampled_from(
        [
            "HTTP_USER_AGENT",
            "HTTP_REFERER",
            "HTTP_COOKIE",
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_DEVICE_IP",
            "HTTP_X_DEVICE_USER_AGENT",
        ]
    ),
    latin1,
    max_size=4,
)


def wsgi_environ(
    method: str, path: str, qs: str, payload: bytes, ctype: str | None, extra: dict
) -> dict:
    """A WSGI environ built by hand: the test client would refuse the broken ones."""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": qs,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(payload),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **extra,
    }
    if ctype is not None:
        environ["CONTENT_TYPE"] = ctype
    return environ


@pytest.fixture(scope="module")
def app():
    tracker, _ = build_app(load_file(ROOT / "config" / "tracker.yaml", {}))
    yield tracker.wsgi
    tracker.close(1.0)


@settings(
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(METHODS),
    path=st.sampled_from(ROUTES) | latin1.map(lambda p: "/" + p),
    qs=query,
    ctype=content_type,
    payload=body,
    extra=headers,
    lie_about_length=st.booleans(),
)
def test_no_request_gets_a_500(app, method, path, qs, ctype, payload, extra, lie_about_length):
    environ = wsgi_environ(method, path, qs, payload, ctype, extra)
    environ["CONTENT_LENGTH"] = str(len(payload) + (7 if lie_about_length else 0))
    statuses = []
    body_out = b"".join(app(environ, lambda *answer: statuses.append(answer)))
    status, response_headers = statuses[0][:2]
    code = int(status.split()[0])
    assert code < 500, (code, body_out[:300])
    # WSGI servers drop the connection on a header value that is not Latin-1 or holds a break.
    for name, header in response_headers:
        assert all(ord(c) < 256 for c in header), (name, header)
        assert "\r" not in header and "\n" not in header, (name, header)


batch_item = st.dictionaries(
    st.sampled_from([*KEYS, "event"]),
    json_value | st.sampled_from(["win", "billing", "loss", "conversion", "impression"]),
    max_size=8,
)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(items=st.lists(batch_item | json_value, max_size=5))
def test_no_batch_gets_a_500(app, items):
    payload = json.dumps(items).encode()
    environ = wsgi_environ("POST", "/events", "", payload, "application/json", {})
    statuses = []
    b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert int(statuses[0].split()[0]) < 500, statuses
