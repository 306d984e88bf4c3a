"""What the OpenAPI document calls valid, the tracker accepts.

Each pattern the document states for a field is generated from (Hypothesis
``from_regex``) and fed to the tracker's own field: every text it matches must
load. The live Schemathesis test checks the same over HTTP on the shipped config
(``positive_data_acceptance``); these cover other bounds and every field, fast.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from typing import Any

import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import ROOT
from tests.apps import build_app
from tracker.adtech import landing, openrtb
from tracker.config import load_file
from tracker.http.openapi.document import OpenApi
from tracker.http.openapi.formats import decimal_pattern, landing_format
from tracker.intake.fields.schema import Micros, build_schema

CONFIG = load_file(ROOT / "config" / "tracker.yaml", {})
PATHS = [p for p in CONFIG.paths.values() if p.batch is None]
#: Price keys in the base64 form exchanges hand out (any 32 bytes do).
KEYS = ("A" * 43, "B" * 43)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def patterned_fields():
    for path in PATHS:
        properties = OpenApi(CONFIG).properties(path)
        for spec, prop in properties.values():
            if "pattern" in prop:
                yield pytest.param(path, spec.name, prop["pattern"], id=f"{path.name}.{spec.name}")


def spelled_price(text: str) -> openrtb.Price:
    """The price a clear-text notice value spells: AUDIT, or a CPM of at most 6 places."""
    if text.upper() == "AUDIT":
        return openrtb.AUDIT_PRICE
    return openrtb.Price(billable=True, cpm_micros=int(Decimal(text) * 1_000_000), encrypted=False)


def spelled(field_type: str, text: str) -> Any:
    """The value a text the document allows stands for, as the tracker should load it."""
    if field_type == "micros":
        return int(Decimal(text) * 1_000_000)
    if field_type == "auction_price":
        return spelled_price(text)
    return text


@pytest.mark.parametrize(("path", "name", "pattern"), list(patterned_fields()))
@SETTINGS
@given(data=st.data())
def test_every_text_a_field_s_pattern_allows_loads(path, name, pattern, data):
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    field_type = next(f.type for f in path.fields if f.name == name)
    loaded = build_schema(path).fields[name].deserialize(text)
    assert loaded == spelled(field_type, text)


BOUNDS = [(0, 1_000_000), (-1e9, 1e9), (None, None), (0, None), (-5, 10), (0, 9), (-100, 3)]


@pytest.mark.parametrize(("minimum", "maximum"), BOUNDS)
@SETTINGS
@given(data=st.data())
def test_a_decimal_inside_the_pattern_is_inside_the_bounds(minimum, maximum, data):
    pattern = decimal_pattern(minimum, maximum)
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    micros = Micros(minimum=minimum, maximum=maximum).deserialize(text)
    assert isinstance(micros, int)


def test_a_decimal_pattern_refuses_what_the_tracker_refuses():
    pattern = re.compile(decimal_pattern(0, 1_000_000))
    for text in ("", "-1", "1e3", "1.1234567", "1000001", "NaN", " 1", "1."):
        assert not pattern.fullmatch(text), text
    assert pattern.fullmatch("999999.999999")


@SETTINGS
@given(data=st.data())
def test_every_landing_url_the_pattern_allows_is_allowed(data):
    redirect = CONFIG.paths["click"].response.redirect
    pattern = landing_format(redirect)["pattern"]
    url = data.draw(st.from_regex(pattern, fullmatch=True))
    host = landing.check_landing_url(url)
    assert landing.compile_allow_list(redirect.allowed_hosts)(host), url


def test_the_landing_pattern_refuses_other_hosts():
    pattern = re.compile(landing_format(CONFIG.paths["click"].response.redirect)["pattern"])
    for url in (
        "https://evil.com/",
        "https://example.com.evil.com/",
        "https://badexample.com/",
        "https://example.com\\@evil.com/",
        "javascript:alert(1)",
        "",
    ):
        assert not pattern.fullmatch(url), url
    assert pattern.fullmatch("https://www.example.com/landing?c=1")


@SETTINGS
@given(data=st.data())
def test_every_price_the_pattern_allows_parses(data):
    spec = next(f for f in CONFIG.paths["win"].fields if f.name == "price")
    pattern = OpenApi(CONFIG).properties(CONFIG.paths["win"])["price"][1]["pattern"]
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    assert openrtb.parse_price(text, spec.price_crypto) == spelled_price(text)


@pytest.mark.parametrize(
    ("method", "query", "body"),
    [
        ("GET", "aid=&price=1.5", None),
        ("POST", "", "aid=&price=1.5"),
        ("POST", "aid=&price=1.5", None),
    ],
)
def test_a_blank_required_field_is_refused_as_missing(method, query, body):
    tracker, collectors = build_app(CONFIG)
    client = falcon.testing.TestClient(tracker.wsgi)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    resp = client.simulate_request(method, "/win", query_string=query, body=body, headers=headers)
    assert resp.status_code == 400
    assert resp.json["errors"] == {"auction_id": ["Missing data for required field."]}
    assert [e.type for c in collectors.values() for e in c.events] == ["rejected"]


@functools.cache
def keyed() -> tuple[Any, dict[str, re.Pattern]]:
    """The shipped config with price keys: /bill's price crypto and both price patterns."""
    keys = {"TRACKER_PRICE_ENCRYPTION_KEY": KEYS[0], "TRACKER_PRICE_INTEGRITY_KEY": KEYS[1]}
    config = load_file(ROOT / "config" / "tracker.yaml", keys)
    crypto = next(f for f in config.paths["billing"].fields if f.name == "price").price_crypto
    patterns = {
        name: re.compile(OpenApi(config).properties(config.paths[name])["price"][1]["pattern"])
        for name in ("win", "billing")
    }
    return crypto, patterns


@SETTINGS
@given(cpm_micros=st.integers(0, openrtb.MAX_CPM_MICROS), iv=st.binary(min_size=16, max_size=16))
def test_an_encrypted_price_matches_the_pattern_of_a_path_with_keys(cpm_micros, iv):
    crypto, patterns = keyed()
    token = crypto.encrypt(cpm_micros, iv)
    assert patterns["win"].fullmatch(token) and patterns["billing"].fullmatch(token)


def test_a_path_that_requires_encryption_documents_no_clear_price():
    _, patterns = keyed()
    assert patterns["win"].fullmatch("1.25")
    assert not patterns["billing"].fullmatch("1.25")
    assert patterns["billing"].fullmatch("AUDIT")
