"""Personal data over real HTTP: gunicorn serving the shipped config, events read from Kafka.

What a refusal lets out (its answer, the rejected stream, the log), what an
accepted event keeps without consent, and how IPv6 addresses that carry an
IPv4 are anonymised. Each check failed before the privacy rules of issue 18.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.integration.live import Server, consume, request
from tests.tcf import tc_string

pytestmark = pytest.mark.integration

VISITOR = "0f8fad5b-d9cb-469f-a165-70867728950e"
USER = "9b2f4c1e-3d5a-4e6f-8a7b-1c2d3e4f5a6b"
PAGE = "https://shop.example/reset?email=alice%40example.com&token=s3cr3t&utm_source=news#top"
PAGE_KEPT = "https://shop.example/reset?utm_source=news"
CONSENT = tc_string((1, 2))
NO_PURPOSE_ONE = tc_string((2,))
UNDISCLOSED = tc_string((1, 2), purpose_one_treatment=1)
#: What no refusal and no event without consent may hold.
SECRETS = ("alice", "s3cr3t", VISITOR, USER, CONSENT, "198.51.100.7")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, broker):
    """The shipped config; 127.0.0.1 is an ad inserter, so its X-Device-IP is believed."""
    server = Server(tmp_path_factory.mktemp("privacy"), broker, TRACKER_AD_INSERTERS="127.0.0.1")
    server.setup_topics()
    server.start()
    yield server
    server.stop()


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_a_refused_page_view_keeps_no_personal_data(server):
    personal = {
        "page": PAGE,
        "vid": VISITOR,
        "gdpr": "1",
        "gdpr_consent": CONSENT,
        "email": "alice@example.com",
        "ip": "198.51.100.7",
    }
    headers = {"Cookie": f"tuid={USER}", "Referer": PAGE}
    query = urllib.parse.urlencode({**personal, "pv": "not-a-uuid"})
    got = request(server.port, "GET", f"/t/page?{query}", headers=headers)
    body = urllib.parse.urlencode({**personal, "pv": "also-not-a-uuid"}).encode()
    posted = request(server.port, "POST", "/t/page", body, {**headers, **FORM})
    assert [got[0], posted[0]] == [400, 400]
    assert leaks(got[2].decode() + posted[2].decode()) == []

    messages = consume([server.topic("tracker-rejected")], 2)
    copies = sorted(
        (event["dimensions"]["request"] for _, _, event in messages), key=lambda r: r["method"]
    )
    for copy, view in zip(copies, ("not-a-uuid", "also-not-a-uuid"), strict=True):
        assert copy["fields"] == {
            "page_url": "https://shop.example/reset",
            "page_view_id": view,
            "gdpr": "1",
        }
        assert copy["withheld"] == ["visitor_id", "gdpr_consent"]
        assert copy["undeclared"] == ["email", "ip"]
        assert copy["referer"] == "https://shop.example/reset"
    assert leaks(json.dumps([event for _, _, event in messages])) == []
    assert leaks(server.output.read_text()) == []


def test_refusals_never_quote_a_personal_value(server):
    marker = "ALICE_AT_EXAMPLE"
    imp = request(server.port, "GET", f"/imp?cid=c1&gdpr_consent=${{{marker}}}")
    page = request(server.port, "GET", f"/t/page?vid=%24%7B{marker}%7D")
    assert (imp[0], page[0]) == (200, 400)
    assert imp[1]["x-tracker-error"].startswith("unsubstituted_macro: gdpr_consent: ")
    assert json.loads(page[2])["reason"] == "unsubstituted_macro"
    for _, headers, body in (imp, page):
        assert marker not in json.dumps(headers) + body.decode("latin-1")
    assert marker not in server.output.read_text()


def page_view(server, view: str, headers: dict | None = None, **signals: str):
    body = urllib.parse.urlencode({"page": PAGE, "pv": view, "vid": VISITOR, **signals})
    sent = {"Cookie": f"tuid={USER}", "Referer": PAGE, **FORM, **(headers or {})}
    return request(server.port, "POST", "/t/page", body.encode(), sent)


def test_without_consent_no_identifier_is_stored(server):
    refused = {
        "00000000-0000-4000-8000-000000000001": ({}, {"gdpr": "1", "gdpr_consent": NO_PURPOSE_ONE}),
        "00000000-0000-4000-8000-000000000002": ({}, {"gdpr": "1", "gdpr_consent": UNDISCLOSED}),
        "00000000-0000-4000-8000-000000000003": (
            {"Sec-GPC": "1"},
            {"gdpr": "1", "gdpr_consent": CONSENT},
        ),
        "00000000-0000-4000-8000-000000000004": ({}, {}),
    }
    granted = "00000000-0000-4000-8000-000000000005"
    for view, (headers, signals) in refused.items():
        status, answer, _ = page_view(server, view, headers, **signals)
        assert (status, "set-cookie" in answer) == (204, False), view
    status, answer, _ = page_view(server, granted, gdpr="1", gdpr_consent=CONSENT)
    assert status == 204 and answer["set-cookie"].startswith(f"tuid={USER};")
    imp = request(server.port, "GET", f"/imp?cid=c1&iid=p1t&gdpr=1&gdpr_consent={UNDISCLOSED}")
    assert imp[0] == 200 and "set-cookie" not in imp[1]

    topics = [server.topic("tracker-events"), server.topic("tracker-impressions")]
    events = {
        e["dimensions"].get("page_view_id") or e["dimensions"]["impression_id"]: e
        for _, _, e in consume(topics, len(refused) + 2)
    }
    assert set(events) == {*refused, granted, "p1t"}
    for view in refused:
        event = events[view]
        assert "visitor_id" not in event["dimensions"] and "user_id" not in event["dimensions"]
        assert event["dimensions"]["page_url"] == PAGE_KEPT
        assert event["context"]["referer"] == PAGE_KEPT
        assert leaks(json.dumps(event).replace(CONSENT, "")) == [], view
    kept = events[granted]["dimensions"]
    assert (kept["visitor_id"], kept["user_id"], kept["page_url"]) == (VISITOR, USER, PAGE)
    assert "user_id" not in events["p1t"]["dimensions"]


@pytest.mark.parametrize(
    ("device_ip", "anonymised"),
    [
        ("2002:c633:6417::1", "198.51.100.0"),  # 6to4 of 198.51.100.23
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.0"),  # Teredo client 192.0.2.45
    ],
)
def test_an_ipv6_address_carrying_an_ipv4_is_anonymised_as_that_ipv4(server, device_ip, anonymised):
    auction = f"auc-{anonymised}"
    status, _, _ = request(
        server.port,
        "GET",
        f"/vast/start?cid=c1&aid={auction}&iid=i1&bid=b1",
        headers={"X-Device-IP": device_ip},
    )
    assert status == 200
    events = consume([server.topic("tracker-video")], 1, settle=1)
    (event,) = [e for _, _, e in events if e["dimensions"]["auction_id"] == auction]
    assert event["context"]["ip"] == anonymised
