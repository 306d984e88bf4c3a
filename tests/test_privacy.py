"""Personal data: what the rejected stream and refusals let out, and what consent lets in."""

from __future__ import annotations

import json
import logging
import urllib.parse

import falcon.testing
import pytest

from tests import ROOT
from tests.apps import build_app
from tests.tcf import tc_string
from tracker.config import ConfigError, load_text
from tracker.intake.privacy import param_filter, url_without_query

SHIPPED = (ROOT / "config" / "tracker.yaml").read_text()
VISITOR = "0f8fad5b-d9cb-469f-a165-70867728950e"
VIEW = "7c9e6679-7425-40de-944e-e07fc1f90ae7"
USER = "9b2f4c1e-3d5a-4e6f-8a7b-1c2d3e4f5a6b"
PAGE = (
    "https://shop.example/account/reset?email=alice%40example.com&token=s3cr3t&utm_source=news#frag"
)
CONSENT = tc_string((1, 2))
NO_PURPOSE_ONE = tc_string((2, 3))
#: Values that must appear nowhere but in an accepted event with consent.
SECRETS = ("alice", "s3cr3t", "frag", VISITOR, USER, CONSENT, NO_PURPOSE_ONE, "198.51.100")


def client_for(text: str = SHIPPED):
    tracker, memory = build_app(load_text(text, {}))
    return falcon.testing.TestClient(tracker.wsgi), memory


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def stream_of(memory) -> list[dict]:
    return [e.to_dict() for e in memory["rejected"].events]


# --- the rejected stream ---------------------------------------------------------------


def test_a_refused_page_view_keeps_no_personal_value():
    client, memory = client_for()
    query = {
        "page": PAGE,
        "pv": "not-a-uuid",
        "vid": VISITOR,
        "gdpr": "1",
        "gdpr_consent": CONSENT,
        "email": "alice@example.com",
        "ip": "198.51.100.7",
    }
    resp = client.simulate_get(
        "/t/page",
        query_string=urllib.parse.urlencode(query),
        headers={"Cookie": f"tuid={USER}", "Referer": PAGE},
        remote_addr="198.51.100.7",
    )
    assert resp.status_code == 400
    (event,) = stream_of(memory)
    request = event["dimensions"]["request"]
    assert request["fields"] == {
        "page_url": "https://shop.example/account/reset",
        "page_view_id": "not-a-uuid",
        "gdpr": "1",
    }
    assert request["withheld"] == ["visitor_id", "gdpr_consent"]
    assert request["undeclared"] == ["email", "ip"]
    assert request["referer"] == "https://shop.example/account/reset"
    assert leaks(json.dumps(event)) == []
    assert leaks(resp.text) == []


def test_a_refused_form_post_is_copied_from_its_body_as_declared():
    client, memory = client_for()
    body = urllib.parse.urlencode(
        {"page": PAGE, "vid": "bad", "gdpr_consent": CONSENT, "title": "Reset alice's password"}
    )
    resp = client.simulate_post(
        "/t/page", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status_code == 400
    (event,) = stream_of(memory)
    request = event["dimensions"]["request"]
    assert request["fields"] == {"page_url": "https://shop.example/account/reset"}
    assert request["withheld"] == ["visitor_id", "gdpr_consent"]
    assert request["undeclared"] == ["title"]
    assert leaks(json.dumps(event)) == []


def test_a_refused_batch_item_withholds_its_consent_string():
    client, memory = client_for()
    item = {"event": "conversion", "gdpr_consent": CONSENT, "email": "alice@example.com"}
    resp = client.simulate_post("/events", json=[item])
    assert resp.json["results"][0]["reason"] == "invalid_fields"
    (event,) = stream_of(memory)
    assert event["dimensions"]["request"]["item"] == {
        "index": 0,
        "fields": {},
        "withheld": ["gdpr_consent"],
        "undeclared": ["email"],
    }
    assert leaks(json.dumps(event)) == []


def test_names_that_are_data_are_not_copied_and_cookies_are_withheld():
    text = SHIPPED.replace(
        "      element: {type: string, name: name, required: true, max_length: 128}\n",
        "      element: {type: string, name: name, required: true, max_length: 128}\n"
        "      session: {type: string, source: [cookie, query], name: sid}\n",
    )
    client, memory = client_for(text)
    client.simulate_get(
        "/t/click",
        query_string="alice@example.com&page=https://user:pw@shop.example/a?b#c&x=1",
        headers={"Cookie": "sid=alice-session"},
    )
    request = stream_of(memory)[0]["dimensions"]["request"]
    assert request["fields"] == {"page_url": "https://shop.example/a"}
    assert request["withheld"] == ["session"]
    assert request["undeclared"] == ["?", "x"]
    assert "alice" not in json.dumps(request)


def hostile_values(marker: str) -> list[str]:
    """Values of a personal field that fail its checks, each carrying ``marker``."""
    return [f"${{{marker}}}", f"%24%7B{marker}%7D", marker * 150, f"{marker}-not-a-uuid"]


LANDING = "https://example.com/"
PERSONAL_FIELDS = [
    (route, base, key)
    for route, base, keys in [
        ("/imp", {"cid": "c1"}, ("gdpr_consent", "us_privacy", "gpp")),
        ("/click", {"cid": "c1", "url": LANDING}, ("gdpr_consent", "url")),
        ("/vast/start", {"cid": "c1"}, ("gdpr_consent",)),
        ("/conv", {"cid": "c1"}, ("gdpr_consent", "us_privacy")),
        ("/t/page", {}, ("page", "vid", "gdpr_consent")),
        ("/t/go", {"name": "n", "url": LANDING}, ("url", "vid")),
    ]
    for key in keys
]


@pytest.mark.parametrize(("route", "base", "key"), PERSONAL_FIELDS)
def test_refusals_never_quote_a_personal_value(route, base, key, caplog):
    client, memory = client_for()
    marker = "ALICE_AT_EXAMPLE"
    caplog.set_level(logging.INFO, logger="tracker.http.errors")
    for value in hostile_values(marker):
        resp = client.simulate_get(route, params={**base, key: value})
        assert resp.status_code in (200, 204, 302, 400), (key, value, resp.status_code)
        seen = [resp.content.decode("latin-1"), json.dumps(dict(resp.headers))]
        assert not any(marker in text for text in seen), (key, value, seen)
    assert marker not in caplog.text
    assert marker not in json.dumps(stream_of(memory))
    assert stream_of(memory), "the values were refused"


def test_a_macro_in_a_non_personal_field_is_still_named():
    client, _ = client_for()
    resp = client.simulate_get("/conv", query_string="cid=c1&order=${ORDER_ID}")
    assert resp.json["errors"] == {
        "order_id": ["Contains the literal macro ${ORDER_ID}: the caller did not substitute it."]
    }


# --- the personal attribute in the config ---------------------------------------------


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (
            "{type: integer, personal: url}",
            "paths.web_page.fields.extra.personal: Only a string field can be a url. "
            "(found: 'url')",
        ),
        (
            "{type: auction_price, personal: identifier}",
            "paths.web_page.fields.extra.personal: A auction_price field cannot be personal: "
            "its refusals quote the value. (found: 'identifier')",
        ),
        (
            "{type: string, personal: email}",
            "paths.web_page.fields.extra.personal: Must be one of: url, identifier, consent. "
            "(found: 'email')",
        ),
    ],
)
def test_a_bad_personal_attribute_is_reported(spec, error):
    text = SHIPPED.replace(
        "    dimensions: &web_dimensions",
        f"      extra: {spec}\n    dimensions: &web_dimensions",
    )
    with pytest.raises(ConfigError) as info:
        load_text(text, {})
    # Once per path: the web paths share these fields.
    assert info.value.errors[0] == error


def test_consent_strings_are_personal_even_unmarked():
    config = load_text(SHIPPED.replace(", personal: consent", ""), {})
    kinds = {f.name: f.personal for f in config.paths["impression"].fields}
    assert (kinds["gdpr_consent"], kinds["us_privacy"], kinds["gpp"]) == ("consent",) * 3
    assert kinds["gpp_sid"] is None


def test_keep_query_params_are_names_or_prefixes():
    with pytest.raises(ConfigError) as info:
        load_text(SHIPPED.replace("keep_query_params: ['utm_*']", "keep_query_params: ['a*b']"), {})
    assert info.value.errors == [
        "server.user_cookie.keep_query_params.0: String does not match expected pattern. "
        "(found: 'a*b')"
    ]


@pytest.mark.parametrize(
    ("url", "keep", "expected"),
    [
        ("https://a.example/p?q=1#f", (), "https://a.example/p"),
        ("https://u:pw@a.example/p/?q", (), "https://a.example/p/"),
        ("https://a.example", (), "https://a.example"),
        ("/relative?x=1", (), "/relative"),
        (
            "https://a.example/?utm_source=n&email=x&gclid=g#f",
            ("utm_*",),
            "https://a.example/?utm_source=n",
        ),
        ("https://a.example/?email=x&gclid=g", ("utm_*", "gclid"), "https://a.example/?gclid=g"),
        ("https://a.example/?email=x", ("utm_*",), "https://a.example/"),
    ],
)
def test_url_without_query(url, keep, expected):
    assert url_without_query(url, param_filter(keep)) == expected


# --- consent on the server -------------------------------------------------------------


def page_view(client, headers: dict | None = None, **params: str):
    query = {"page": PAGE, "pv": VIEW, "vid": VISITOR, **params}
    return client.simulate_get(
        "/t/page",
        query_string=urllib.parse.urlencode(query),
        headers={"Referer": PAGE, "Cookie": f"tuid={USER}", **(headers or {})},
    )


def test_with_consent_the_page_view_keeps_its_identifiers():
    client, memory = client_for()
    resp = page_view(client, gdpr="1", gdpr_consent=CONSENT)
    assert resp.status_code == 204
    (event,) = memory["kafka"].events
    assert event.dimensions["visitor_id"] == VISITOR
    assert event.dimensions["user_id"] == USER
    assert event.dimensions["page_url"] == PAGE
    assert event.context["referer"] == PAGE
    assert resp.headers["set-cookie"].startswith(f"tuid={USER};")


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"gdpr": "1", "gdpr_consent": NO_PURPOSE_ONE}, {}),
        ({"gdpr": "1"}, {}),
        # Purpose 1 not disclosed: no Purpose 1 consent, whatever its bit says.
        ({"gdpr": "1", "gdpr_consent": tc_string((1, 2), purpose_one_treatment=1)}, {}),
        ({"gdpr": "1", "gdpr_consent": CONSENT}, {"Sec-GPC": "1"}),
        ({"gdpr": "0"}, {"Sec-GPC": "1"}),
        ({}, {}),  # no signal: require_consent_signal
    ],
)
def test_without_consent_nothing_identifies_the_visitor(params, headers):
    client, memory = client_for()
    resp = page_view(client, headers, **params)
    assert resp.status_code == 204
    (event,) = memory["kafka"].events
    assert "visitor_id" not in event.dimensions and "user_id" not in event.dimensions
    assert event.dimensions["page_url"] == "https://shop.example/account/reset?utm_source=news"
    assert event.context["referer"] == "https://shop.example/account/reset?utm_source=news"
    assert event.dimensions["page_view_id"] == VIEW
    assert "set-cookie" not in resp.headers
    assert (
        leaks(event.to_json().decode().replace(event.dimensions.get("gdpr_consent", "-"), "")) == []
    )


def test_an_absent_gdpr_is_gdpr_0_when_no_signal_is_required():
    client, memory = client_for(
        SHIPPED.replace("require_consent_signal: true", "require_consent_signal: false")
    )
    page_view(client)
    page_view(client, {"Sec-GPC": "1"})
    allowed, vetoed = memory["kafka"].events
    assert allowed.dimensions["visitor_id"] == VISITOR and allowed.dimensions["page_url"] == PAGE
    assert "visitor_id" not in vetoed.dimensions


def test_paths_without_user_id_drop_the_visitor_id_too():
    client, memory = client_for()
    client.simulate_post(
        "/t/click",
        body=urllib.parse.urlencode({"name": "b", "page": PAGE, "vid": VISITOR, "gdpr": "1"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    (event,) = memory["kafka"].events
    assert "visitor_id" not in event.dimensions
    assert event.dimensions["page_url"] == "https://shop.example/account/reset?utm_source=news"


def test_a_click_without_consent_still_goes_to_the_whole_landing_url():
    client, memory = client_for()
    landing = "https://www.example.com/offer?utm_source=ad&email=alice%40example.com"
    resp = client.simulate_get("/t/go", params={"name": "n", "url": landing})
    assert resp.status_code == 302 and resp.headers["location"] == landing
    (event,) = memory["kafka"].events
    assert event.dimensions["landing_url"] == "https://www.example.com/offer?utm_source=ad"


def test_batch_items_follow_the_same_consent_rule():
    text = SHIPPED.replace(
        "      paths: [conversion, win, billing, loss]", "      paths: [conversion, web_event]"
    )
    client, memory = client_for(text)
    items = [
        {"event": "web_event", "name": "e", "vid": VISITOR, "page": PAGE, "gdpr": 1},
        {"event": "web_event", "name": "e", "vid": VISITOR, "gdpr": 1, "gdpr_consent": CONSENT},
    ]
    resp = client.simulate_post("/events", json=items)
    assert [r["status"] for r in resp.json["results"]] == ["accepted", "accepted"]
    refused, granted = memory["kafka"].events
    assert "visitor_id" not in refused.dimensions
    assert refused.dimensions["page_url"] == "https://shop.example/account/reset?utm_source=news"
    assert granted.dimensions["visitor_id"] == VISITOR


def test_an_impression_with_purpose_one_undisclosed_gets_no_user_id():
    client, memory = client_for()
    tc = tc_string((1,), purpose_one_treatment=1)
    resp = client.simulate_get("/imp", params={"cid": "c1", "gdpr": "1", "gdpr_consent": tc})
    assert "set-cookie" not in resp.headers
    assert "user_id" not in memory["kafka"].events[0].dimensions
