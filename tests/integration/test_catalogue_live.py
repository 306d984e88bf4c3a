"""The shipped catalogue end to end: real gunicorn, real broker, every path and its refusals."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections import Counter, defaultdict

import pytest

from tests import ROOT
from tests.integration.live import consume, request
from tests.vast_player import play, tracking_urls
from tracker.adtech import clickurl, signing

pytestmark = pytest.mark.integration

KEYS = "k1:ZXhhbXBsZS1rZXktZG8tbm90LXVzZS0x"
BROWSER = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15"}
TOPICS = ["impressions", "clicks", "conversions", "video", "auctions", "billing"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, broker):
    from tests.integration.live import Server

    server = Server(tmp_path_factory.mktemp("catalogue"), broker, TRACKER_CLICK_KEYS=KEYS)
    server.setup_topics()
    server.start()
    yield server
    server.stop()


def call(server, target: str, body: object = None, headers: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    hdrs = {**BROWSER, **({"Content-Type": "application/json"} if data else {}), **(headers or {})}
    return request(server.port, "POST" if data else "GET", target, data, hdrs)


def q(**params) -> str:
    return urllib.parse.urlencode(params)


def read_all(
    server, expected: int, names: list[str] = TOPICS
) -> dict[str, list[tuple[bytes | None, dict]]]:
    topics = [server.topic(f"tracker-{t}") for t in names]
    by_topic = defaultdict(list)
    for topic, key, event in consume(topics, expected, timeout=60):
        by_topic[topic.rsplit("-", 1)[0].removeprefix("tracker-")].append((key, event))
    return by_topic


def test_every_path_and_every_refusal(server):
    signer = signing.UrlSigner(signing.parse_keys(KEYS))
    landing = "https://shop.example.org/p?clk={click_id}&c={campaign_id}"
    signed = clickurl.build_click_url(
        "http://x/click", landing, {"cid": "c-click"}, signer, 600, time.time()
    )
    signed_query = signed.split("?", 1)[1]
    expired = signer.sign(landing, int(time.time()) - 1)
    forged = dict(signer.sign(landing), url="https://shop.evil.example/p")
    accepted = {
        "imp": call(server, "/imp?" + q(cid="c-imp", aid="A1", iid="I1", bid="B1", price="4.20")),
        "click_signed": call(server, "/click?" + signed_query),
        "click_listed": call(server, "/click?" + q(cid="c-click", url="https://a.example.com/x")),
        "conv": call(server, "/conv", {"cid": "c-conv", "order": "O-1", "value": "10.5"}),
        "win": call(server, "/win?" + q(aid="A1", iid="I1", bid="B1", cid="c-imp", price="4.2")),
        "bill": call(server, "/bill?" + q(aid="A1", iid="I1", bid="B1", cid="c-imp", price="4.2")),
        "bill_again": call(
            server, "/bill?" + q(aid="A1", iid="I1", bid="B1", cid="c-imp", price="4.2")
        ),
        "loss": call(server, "/loss?" + q(aid="A2", cid="c-imp", loss="102")),
        "batch": call(
            server,
            "/events",
            [
                {
                    "event": "billing",
                    "aid": "A3",
                    "iid": "I1",
                    "bid": "B1",
                    "cid": "c-b",
                    "price": "2",
                },
                {"event": "loss", "aid": "A4", "loss": "100"},
            ],
        ),
    }
    refused = {
        "click_forged": call(server, "/click?" + q(cid="c", **forged)),
        "click_tampered": call(
            server, "/click?" + signed_query.replace("shop.example.org", "shop.example.com.evil.io")
        ),
        "click_expired": call(server, "/click?" + q(cid="c", **expired)),
        "click_unlisted": call(server, "/click?" + q(cid="c", url="https://phish.example.net/")),
        "click_javascript": call(server, "/click?" + q(cid="c", url="javascript:alert(1)")),
        "win_macro": call(server, "/win?aid=A9&price=${AUCTION_PRICE}"),
        "bill_bad_price": call(server, "/bill?" + q(aid="A9", price="-3")),
        "vast_unknown": call(server, "/vast/halfway?" + q(cid="c")),
        "batch_oversize": call(
            server, "/events", [{"event": "win", "aid": f"X{i}", "price": "1"} for i in range(101)]
        ),
        "conv_missing": call(server, "/conv", {"order": "O-9"}),
    }
    assert {k: r[0] for k, r in accepted.items()} == {
        "imp": 200,
        "click_signed": 302,
        "click_listed": 302,
        "conv": 200,
        "win": 204,
        "bill": 204,
        "bill_again": 204,
        "loss": 204,
        "batch": 200,
    }
    assert accepted["click_listed"][1]["location"] == "https://a.example.com/x"
    assert [r["status"] for r in json.loads(accepted["batch"][2])["results"]] == ["accepted"] * 2
    reasons = {
        k: (r[0], r[1].get("x-tracker-error") or json.loads(r[2])["reason"])
        for k, r in refused.items()
    }
    assert reasons == {
        "click_forged": (400, "bad_signature"),
        "click_tampered": (400, "bad_signature"),
        "click_expired": (400, "expired"),
        "click_unlisted": (400, "unlisted_host"),
        "click_javascript": (400, "invalid_landing_url"),
        "win_macro": (400, "unsubstituted_macro"),
        "bill_bad_price": (400, "invalid_fields"),
        "vast_unknown": (200, reasons["vast_unknown"][1]),
        "batch_oversize": (413, "batch_too_large"),
        "conv_missing": (400, "invalid_fields"),
    }
    assert reasons["vast_unknown"][1].startswith("invalid_fields: vast_event: Must be one of")

    # Ten events; the retried billing notice has the same id as the first.
    topics = read_all(server, 10)
    counts = {t: len(v) for t, v in topics.items()}
    assert counts == {"impressions": 1, "clicks": 2, "conversions": 1, "auctions": 3, "billing": 3}
    ((imp_key, imp),) = topics["impressions"]
    assert (imp_key, imp["metrics"]) == (b"c-imp", {"impressions": 1, "cost_micros": 4200})
    signed_click = next(
        e
        for _, e in topics["clicks"]
        if "auction_id" not in e["dimensions"]
        and e["dimensions"]["campaign_id"] == "c-click"
        and e["id"] in accepted["click_signed"][1]["location"]
    )
    assert (
        accepted["click_signed"][1]["location"]
        == f"https://shop.example.org/p?clk={signed_click['id']}&c=c-click"
    )
    bills = [e for _, e in topics["billing"]]
    # The retried notice has the first one's id: a consumer de-duplicating by id counts it once.
    assert sorted(Counter(e["id"] for e in bills).values()) == [1, 2]
    assert {e["metrics"]["spend_micros"] for e in bills} == {4200, 2000}
    assert {e["type"] for _, e in topics["auctions"]} == {"win", "loss"}
    # The partner feed got the money and the ids, not the personal data.
    partner = [
        json.loads(line)
        for path in server.log_dir.glob("partner-*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert len(partner) == 6
    assert all(e["context"] == {} and "user_agent" not in json.dumps(e) for e in partner)


def test_a_vast_4_document_played_through_the_tracker(server):
    document = (ROOT / "tests" / "fixtures" / "vast" / "inline_linear.xml").read_text()
    urls = tracking_urls(document, host=f"127.0.0.1:{server.port}")
    # Each event with the ad's playhead at that moment, as the player reports it.
    playback = {
        "impression": None,
        "start": 0,
        "firstQuartile": 7_512,
        "progress": 10_004,
        "midpoint": 15_020,
        "thirdQuartile": 22_490,
        "complete": 30_000,
    }
    fired = play(urls, playback, error_code=405)
    for _event, url in fired:
        parts = urllib.parse.urlsplit(url)
        status, headers, _ = call(server, f"{parts.path}?{parts.query}")
        assert status == 200 and "x-tracker-error" not in headers, (url, headers)
    video = [e for _, e in read_all(server, len(fired), ["video"])["video"]]
    assert len(video) == len(fired)
    by_event = {e["dimensions"]["vast_event"]: e for e in video}
    # Watch time is the playhead where the player knew it; the error carried none.
    watched = {name: e["metrics"].get("watch_ms") for name, e in by_event.items()}
    assert watched == {**playback, "error": None}
    assert all(e["metrics"]["duration_ms"] == 30_000 for e in video)
    assert by_event["progress"]["metrics"]["offset_ms"] == 10_000
    assert by_event["error"]["dimensions"]["error_code"] == 405
    assert by_event["error"]["dimensions"]["error_name"] == "Problem displaying MediaFile"
    # Completion rate and watch time, computed the way docs/events.md says.
    starts = sum(e["metrics"].get("starts", 0) for e in video)
    completes = sum(e["metrics"].get("completes", 0) for e in video)
    assert completes / starts == 1.0
    assert max(e["metrics"].get("watch_ms", 0) for e in video) == 30_000
    assert len({e["id"] for e in video}) == len(video)
