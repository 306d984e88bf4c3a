"""Property-based HTTP fuzzing of real gunicorn with meinheld workers: never a 5xx or a drop.

Hypothesis builds requests across every configured path and method (and
others), every documented parameter of each path with hostile values
(non-Latin-1 text, control characters, macros, oversize, broken escapes, numbers
past every field's maximum), every body type and the headers the tracker reads,
and sends each as raw bytes on its own connection. Every request must get a
status line below 500, and the workers must survive. ``TRACKER_FUZZ_EXAMPLES``
sets the number of examples in all (900 by default, spread over the paths;
about 40 s).
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import ROOT
from tests.integration.live import Server, raw
from tracker.config import load_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = load_file(ROOT / "config" / "tracker.yaml", {})
#: Each configured route (with its parameter filled) and the parameter names its fields read.
PARAMETERS = {
    path.route.replace("{event}", "start"): sorted({f.key for f in path.fields} | {"sig", "kid"})
    for path in CONFIG.paths.values()
}
#: The methods each route takes; others are tried too, less often.
ALLOWED = {
    path.route.replace("{event}", "start"): list(path.methods) for path in CONFIG.paths.values()
}
ROUTES = [*PARAMETERS, "/vast/%C3%28", "/healthz", "/metrics", "/", "/imp/", "/x"]
# QUERY and BREW are unknown to meinheld, which refuses them itself (405).
METHODS = ["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH", "QUERY", "BREW"]
EVERY_PARAMETER = sorted({k for keys in PARAMETERS.values() for k in keys})
VALID = {
    "cid": "c1",
    "aid": "a1",
    "price": "1.5",
    "loss": "102",
    "url": "https%3A%2F%2Fexample.com%2F",
}

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(min_codepoint=0x100, max_codepoint=0x2FFF), min_size=1, max_size=10),
    st.sampled_from(["\u20ac", "\uff11.\uff15", "\u0663", "caf\u00e9", "\U0001f600"]),
    st.sampled_from(
        [
            "\u20ac",
            "${AUCTION_PRICE}",
            "%24%7BAUCTION_PRICE%7D",
            "https://{site_domain}/",
            "https://evil.example/",
            "AUDIT",
            "-1",
            "1e309",
            "NaN",
            "9" * 30,
            "-" + "9" * 30,
            "1" + "0" * 400,
            "9007199254740993",
            "99999999999999.5",
            "1E2",
            "1_0",
            "\u0661\u0660",
            "+5",
            "\r\nSet-Cookie: x=1",
            "\x00",
            "\ud800",
            "[" * 60,
        ]
    ),
    # Up to past meinheld's 8 KB request-line limit, where it answers 414 itself.
    st.integers(0, 12000).map(lambda n: "a" * n),
)
# Values go out percent-encoded as UTF-8 (lone surrogates too, which are not UTF-8).
value = hostile_text.map(lambda v: quote(v.encode("utf-8", "surrogatepass"), safe=""))
# One broken escape refuses the whole query before any field is read: only now and then.
broken = st.sampled_from([""] * 18 + ["%", "%zz", "%C3", "%FF%FE", "%C3%28", "%00"])
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**15, max_value=10**1000)
    | st.floats()
    | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)
latin1_header = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
headers = st.dictionaries(
    st.sampled_from(
        [
            "User-Agent",
            "Referer",
            "Cookie",
            "X-Forwarded-For",
            "X-Device-IP",
            "X-Device-User-Agent",
            "Accept-Language",
        ]
    ),
    latin1_header,
    max_size=4,
)


@st.composite
def requests(draw, routes: list[str]) -> bytes:
    """One raw HTTP/1.1 request to one of ``routes``."""
    route = draw(st.sampled_from(routes))
    names = PARAMETERS.get(route, EVERY_PARAMETER)
    # Valid required values, so that a request gets past them to the field it attacks.
    params = {k: v for k, v in VALID.items() if k in names and draw(st.booleans())}
    attacked = draw(st.permutations(names))[: draw(st.integers(1, 6))]
    for name in attacked:
        params[name] = draw(value)
    pairs = list(params.items())
    query = "&".join(f"{k}={v}" for k, v in pairs) + draw(broken)
    fields = {k: draw(json_value) for k in draw(st.lists(st.sampled_from(names), max_size=6))}
    kind = draw(st.sampled_from(["none", "json", "json_array", "deep", "form", "binary"]))
    body, ctype = {
        "none": (b"", None),
        "json": (json.dumps(fields).encode(), "application/json"),
        "json_array": (
            json.dumps([{"event": "win", **fields}, fields]).encode(),
            "application/json",
        ),
        "deep": (b"[" * draw(st.integers(30, 60_000)), "application/json"),
        "form": (query.encode(), "application/x-www-form-urlencoded"),
        "binary": (
            draw(st.binary(max_size=300)),
            draw(st.sampled_from(["text/plain", "", "application/json"])),
        ),
    }[kind]
    method = draw(st.sampled_from(ALLOWED.get(route, ["GET"]) * 6 + METHODS))
    lines = [f"{method} {route}?{query} HTTP/1.1", "Host: tracker"]
    lines += [f"{k}: {v}" for k, v in draw(headers).items()]
    if ctype is not None:
        lines.append(f"Content-Type: {ctype}")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


@pytest.fixture(scope="module")
def server(tmp_path_factory, broker):
    server = Server(tmp_path_factory.mktemp("fuzz"), broker, TRACKER_LOG_LEVEL="WARNING")
    server.setup_topics()
    server.start()
    yield server
    server.stop()


#: Each configured route is fuzzed on its own, the other targets together.
GROUPS = [[route] for route in PARAMETERS] + [[r for r in ROUTES if r not in PARAMETERS]]
EXAMPLES = int(os.environ.get("TRACKER_FUZZ_EXAMPLES", "900")) // len(GROUPS)


@pytest.mark.parametrize("routes", GROUPS, ids=[" ".join(g) for g in GROUPS])
def test_no_request_gets_a_5xx_or_a_dropped_connection(server, routes):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=requests(routes))
    def check(request: bytes) -> None:
        status = raw(server.port, request)
        assert status is not None, f"dropped: {request[:300]!r}"
        assert status < 500, (status, request[:300])

    check()


def test_the_workers_survived_the_fuzzing(server):
    assert len(server.workers()) == server.worker_count
    assert server.get("/healthz")[0] == 200
    log = server.output.read_text()
    assert "Traceback" not in log, log[-3000:]
