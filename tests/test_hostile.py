"""Hostile requests at the app, in-process: each gets the 4xx a caller can act on.

The same attacks over real HTTP, against gunicorn with meinheld workers, are in
``tests/integration/test_fuzz_live.py``.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import falcon.testing
import pytest

from tests import ROOT
from tests.apps import build_app
from tests.tcf import tc_string
from tracker.adtech.pricecrypto import PriceCrypto
from tracker.adtech.signing import UrlSigner, parse_keys
from tracker.config import load_text
from tracker.http.extract import MAX_JSON_DEPTH
from tracker.http.limits import valid_query
from tracker.process.cli import main

KEYS = "k1:ZXhhbXBsZS1rZXktZG8tbm90LXVzZS0x"
PRICE_KEYS = {
    "TRACKER_PRICE_ENCRYPTION_KEY": "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=",
    "TRACKER_PRICE_INTEGRITY_KEY": "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=",
}


def client_for(environ: dict[str, str] | None = None, replace: tuple[str, str] | None = None):
    """The shipped config, with one text replacement when given."""
    text = (ROOT / "config" / "tracker.yaml").read_text()
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace, 1)
    tracker, memory = build_app(load_text(text, environ or {}))
    return falcon.testing.TestClient(tracker.wsgi), memory


@pytest.fixture(scope="module")
def client():
    return client_for({"TRACKER_CLICK_KEYS": KEYS})[0]


def test_a_non_latin1_price_is_quoted_escaped_in_the_error_header(client):
    resp = client.simulate_get("/imp", query_string="cid=c1&price=%E2%82%AC%0D%0AX:%20y")
    assert resp.status_code == 200
    header = resp.headers["x-tracker-error"]
    assert header.isascii() and header.isprintable()
    assert header == (
        "invalid_fields: price: price '\\u20ac\\r\\nX: y' is not a decimal CPM like 1.25 (no "
        "sign, exponent or separators), or is an encrypted price and no price keys are configured"
    )


@pytest.mark.parametrize("path", ["/events", "/conv", "/win"])
def test_deep_json_is_refused_before_parsing(client, path):
    resp = client.simulate_post(
        path, body=b"[" * 50_000, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json["reason"] == "json_too_deep"
    assert resp.json["description"] == f"The body nests deeper than {MAX_JSON_DEPTH} levels."


def test_json_at_the_depth_limit_is_read(client):
    value: object = "x"
    for _ in range(MAX_JSON_DEPTH - 1):
        value = [value]
    resp = client.simulate_post("/conv", json={"cid": "c1", "x": value, "y": "[[[[" * 20})
    assert resp.status_code == 200


def test_brackets_inside_strings_do_not_count_as_depth(client):
    body = json.dumps({"cid": "c1", "order": '\\"' + "[" * 200}).encode()
    resp = client.simulate_post("/conv", body=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json["errors"] == {"order_id": ["Longer than maximum length 128."]}


def signed_click(template: str, **params: str) -> str:
    signed = UrlSigner(parse_keys(KEYS)).sign(template)
    return urlencode({**params, **signed})


def test_a_signed_template_with_a_macro_host_still_needs_the_allow_list(client):
    query = signed_click("https://{site_domain}/", cid="c1", site="evil.example")
    refused = client.simulate_get("/click", query_string=query)
    assert refused.status_code == 400
    assert refused.json["reason"] == "unlisted_host"
    allowed = client.simulate_get(
        "/click", query_string=signed_click("https://{site_domain}/", cid="c1", site="example.com")
    )
    assert allowed.status_code == 302
    assert allowed.headers["location"] == "https://example.com/"


def test_an_unsigned_click_is_decided_alike_with_or_without_a_macro():
    # Without a macro the click is decided before its event is built (the cheap
    # refusal a flood of them gets); the answer and what is collected must not
    # differ from a click whose macro needs the event.
    client, memory = client_for({"TRACKER_CLICK_KEYS": KEYS})
    for template in ("https://evil.example/", "https://evil.example/{campaign_id}"):
        query = urlencode({"cid": "c1", "url": template})
        refused = client.simulate_get("/click", query_string=query)
        assert (refused.status_code, refused.json["reason"]) == (400, "unlisted_host")
        assert "location" not in refused.headers
    assert memory["kafka"].events == []
    for template, location in (
        ("https://example.com/a", "https://example.com/a"),
        ("https://example.com/{campaign_id}", "https://example.com/c1"),
    ):
        resp = client.simulate_get("/click", query_string=urlencode({"cid": "c1", "url": template}))
        assert (resp.status_code, resp.headers["location"]) == (302, location)
    assert [e.dimensions["campaign_id"] for e in memory["kafka"].events] == ["c1", "c1"]


def test_a_signed_template_with_a_macro_in_its_path_needs_no_allow_list(client):
    query = signed_click("https://shop.example/{campaign_id}", cid="c1")
    resp = client.simulate_get("/click", query_string=query)
    assert resp.status_code == 302
    assert resp.headers["location"] == "https://shop.example/c1"


def test_query_scope_signature_covers_the_ad_ids(capsys, monkeypatch):
    client, memory = client_for(
        {"TRACKER_CLICK_KEYS": KEYS},
        (
            "        allowed_hosts: [example.com, '*.example.com']\n",
            "        allowed_hosts: []\n        signature_scope: query\n",
        ),
    )
    monkeypatch.setenv("TRACKER_CLICK_KEYS", KEYS)
    args = ["sign-url", "--base", "http://t/click", "--scope", "query"]
    args += ["--landing", "https://shop.example/", "--param", "cid=c1", "--param", "aid=a1"]
    assert main(args) == 0
    query = capsys.readouterr().out.strip().partition("?")[2]
    assert client.simulate_get("/click", query_string=query).status_code == 302
    changed = client.simulate_get("/click", query_string=query.replace("aid=a1", "aid=a2"))
    added = client.simulate_get("/click", query_string=query + "&iid=i9")
    url_only = signed_click("https://shop.example/", cid="c1", aid="a2")
    for resp in (changed, added, client.simulate_get("/click", query_string=url_only)):
        assert resp.status_code == 400
        assert resp.json["reason"] == "bad_signature"
    assert [e.dimensions["auction_id"] for e in memory["kafka"].events] == ["a1"]


def test_billing_refuses_clear_prices_once_keys_are_set():
    client, memory = client_for(PRICE_KEYS)
    crypto = PriceCrypto.from_config(
        PRICE_KEYS["TRACKER_PRICE_ENCRYPTION_KEY"], PRICE_KEYS["TRACKER_PRICE_INTEGRITY_KEY"]
    )
    clear = client.simulate_get("/bill", params={"aid": "a1", "price": "9999"})
    assert clear.status_code == 400
    assert clear.json["errors"] == {
        "price": ["Must be encrypted: this path refuses clear-text prices."]
    }
    token = crypto.encrypt(2_000_000, b"0123456789abcdef")
    assert client.simulate_get("/bill", params={"aid": "a1", "price": token}).status_code == 204
    assert client.simulate_get("/bill", params={"aid": "a2", "price": "AUDIT"}).status_code == 204
    # /win keeps taking clear prices: it bills nothing.
    assert client.simulate_get("/win", params={"aid": "a3", "price": "1"}).status_code == 204
    assert [e.type for e in memory["kafka"].events] == ["billing", "billing", "win"]


def test_without_keys_billing_takes_clear_prices():
    client, _ = client_for()
    assert client.simulate_get("/bill", params={"aid": "a1", "price": "2"}).status_code == 204


@pytest.mark.parametrize(
    ("vendors", "cookie"), [((), False), ((7,), False), ((7, 755), True), ((755,), True)]
)
def test_the_user_cookie_needs_the_configured_vendor_s_consent(vendors, cookie):
    line = "    require_consent_signal: true\n"
    client, memory = client_for(replace=(line, line + "    vendor_id: 755\n"))
    consent = tc_string((1,), vendors=vendors, max_vendor_id=800)
    resp = client.simulate_get("/imp", params={"cid": "c1", "gdpr": "1", "gdpr_consent": consent})
    assert ("tuid" in resp.cookies) is cookie
    (event,) = memory["kafka"].events
    assert ("user_id" in event.dimensions) is cookie


@pytest.mark.parametrize(
    ("query", "valid"),
    [
        ("cid=c1", True),
        ("cid=not%20a%20campaign%21", True),
        ("site=caf%C3%A9", True),
        ("price=%E2%82%AC", True),
        ("cid=%FF", False),
        ("cid=%E2%82", False),
        ("cid=%zz", False),
        ("cid=%2", False),
        ("cid=caf\xe9", False),
    ],
)
def test_query_encoding_check(query, valid):
    assert valid_query(query) is valid


#: A valid value of each parameter a shipped path requires, so that a request gets
#: past them to the field it attacks.
REQUIRED = {"cid": "c1", "aid": "a1", "price": "1.5", "loss": "102", "name": "n1"}
REQUIRED["url"] = "https://example.com/"
NUMERIC_TYPES = ("integer", "float", "micros", "loss_reason", "auction_price")
#: Every numeric field of every shipped path, with each source it is read from.
NUMERIC_FIELDS = [
    (path, spec, source)
    for path in load_text((ROOT / "config" / "tracker.yaml").read_text(), {}).paths.values()
    if path.batch is None
    for spec in path.fields
    if spec.type in NUMERIC_TYPES
    for source in spec.sources
    if source != "body" or "POST" in path.methods
]
#: Huge numbers as a caller can send them: text in any source, and numbers in JSON.
HUGE = ["9" * 30, "-" + "9" * 30, "1" + "0" * 400, "99999999999999.5", "9007199254740993"]
JSON_HUGE = [b'"' + b"9" * 40_000 + b'"', b"1" + b"0" * 30, b"-1" + b"0" * 4000, b"1e400"]


def _numeric_request(path, spec, source: str, raw: bytes) -> dict:
    """The simulate_request arguments sending ``raw`` as ``spec`` by ``source``."""
    route = path.route.replace("{event}", "start")
    required = {k: v for k, v in REQUIRED.items() if k in {f.key for f in path.fields}}
    required.pop(spec.key, None)
    if source == "query":
        query = urlencode(required) + f"&{spec.key}=" + raw.decode()
        return {"method": "GET", "path": route, "query_string": query}
    body = b'{"%s": %s' % (spec.key.encode(), raw)
    body += b"".join(b', "%s": "%s"' % (k.encode(), v.encode()) for k, v in required.items())
    headers = {"Content-Type": "application/json"}
    return {"method": "POST", "path": route, "body": body + b"}", "headers": headers}


@pytest.fixture(scope="module")
def numeric_app():
    return client_for({"TRACKER_CLICK_KEYS": KEYS})


@pytest.mark.parametrize(
    ("path", "spec", "source"),
    NUMERIC_FIELDS,
    ids=[f"{p.name}.{s.name}.{src}" for p, s, src in NUMERIC_FIELDS],
)
def test_a_huge_number_in_any_numeric_field_is_refused_by_the_field(
    numeric_app, path, spec, source
):
    client, memory = numeric_app
    for collector in memory.values():
        collector.events.clear()
    values = [b'"' + v.encode() + b'"' for v in HUGE] + JSON_HUGE
    for raw in values if source == "body" else [v.encode() for v in HUGE]:
        resp = client.simulate_request(**_numeric_request(path, spec, source, raw))
        if path.response.always:
            assert resp.status_code == 200, raw[:40]
            error = resp.headers["x-tracker-error"]
            assert error.startswith(f"invalid_fields: {spec.name}: "), error
        else:
            assert resp.status_code == 400, (raw[:40], resp.text[:300])
            assert list(resp.json["errors"]) == [spec.name], resp.json
    assert [e for c in memory.values() for e in c.events if e.type != "rejected"] == []


def test_every_numeric_field_of_the_shipped_config_has_a_maximum():
    for path, spec, _ in NUMERIC_FIELDS:
        if spec.type != "auction_price":  # bounded by openrtb.MAX_CPM_MICROS
            assert spec.max is not None and spec.max <= 2**53 - 1, (path.name, spec.name)


@pytest.mark.parametrize("name", ["playhead", "duration", "offset"])
def test_a_huge_vast_time_is_left_out_with_a_warning(name):
    client, memory = client_for()
    key = {"playhead": "ph", "duration": "dur", "offset": "off"}[name]
    resp = client.simulate_get("/vast/progress", params={"cid": "c1", key: "9" * 20 + ":00:00"})
    assert resp.status_code == 200 and "x-tracker-error" not in resp.headers
    (event,) = memory["kafka"].events
    assert event.dimensions["vast_warning"].startswith(f"invalid {name} '999")
    assert f"{name}_ms" not in event.metrics
    client.simulate_get("/vast/progress", params={"cid": "c1", key: "99:59:59.999999"})
    assert memory["kafka"].events[1].metrics[f"{name}_ms"] == 359_999_999
