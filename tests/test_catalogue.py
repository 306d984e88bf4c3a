"""The shipped ad-tech catalogue, in-process: consent, privacy filters, ids, prices, batches."""

from __future__ import annotations

import json

import falcon.testing
import pytest

from tests import ROOT
from tests.apps import build_app
from tests.tcf import tc_string
from tracker.adtech.pricecrypto import PriceCrypto
from tracker.config import load_file
from tracker.process.cli import main

EXAMPLE_KEYS = {"TRACKER_CLICK_KEYS": "k1:ZXhhbXBsZS1rZXktZG8tbm90LXVzZS0x"}
# Google's published example keys (see tests/test_openrtb.py): not secrets.
PRICE_KEYS = {
    "TRACKER_PRICE_ENCRYPTION_KEY": "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=",
    "TRACKER_PRICE_INTEGRITY_KEY": "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=",
}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def client_for(environ: dict[str, str] | None = None):
    tracker, memory = build_app(load_file(ROOT / "config" / "tracker.yaml", environ or {}))
    return falcon.testing.TestClient(tracker.wsgi), memory


def get(client, path, headers=None, **params):
    return client.simulate_get(
        path, params=params, headers={"User-Agent": BROWSER, **(headers or {})}
    )


@pytest.mark.parametrize(
    ("params", "cookie"),
    [
        ({"gdpr": "1", "gdpr_consent": tc_string(purposes=(1, 2, 3))}, True),
        ({"gdpr": "1", "gdpr_consent": tc_string(purposes=(2, 3))}, False),
        ({"gdpr": "1"}, False),
        ({"gdpr": "1", "gdpr_consent": "garbage"}, False),
        ({"gdpr": "0"}, True),
        ({"gdpr": "0", "us_privacy": "1YYN"}, False),
        ({}, False),
    ],
)
def test_user_id_cookie_only_with_consent(params, cookie):
    client, memory = client_for()
    resp = get(client, "/imp", cid="c1", **params)
    (event,) = memory["kafka"].events
    assert ("user_id" in event.dimensions) is cookie
    assert ("tuid" in resp.cookies) is cookie
    if cookie:
        jar = resp.cookies["tuid"]
        assert (jar.secure, jar.http_only, jar.same_site, jar.path) == (True, True, "None", "/")
        assert jar.value == event.dimensions["user_id"]
    # The privacy signals are carried unchanged either way.
    for name in ("gdpr_consent", "us_privacy"):
        assert event.dimensions.get(name) == params.get(name)


def test_an_existing_user_id_is_kept_and_a_forged_one_replaced():
    client, memory = client_for()
    kept = "0f8fad5b-d9cb-469f-a165-70867728950e"
    get(client, "/imp", headers={"Cookie": f"tuid={kept}"}, cid="c1", gdpr="0")
    get(client, "/imp", headers={"Cookie": "tuid=<script>"}, cid="c1", gdpr="0")
    first, second = memory["kafka"].events
    assert first.dimensions["user_id"] == kept
    assert second.dimensions["user_id"] not in (kept, "<script>")


def test_the_partner_feed_never_sees_personal_data():
    client, memory = client_for()
    resp = get(
        client,
        "/bill",
        aid="a1",
        iid="i1",
        bid="b1",
        cid="c1",
        seat="s9",
        price="1.5",
        headers={"X-Forwarded-For": "198.51.100.1"},
    )
    assert resp.status_code == 204
    (full,) = memory["kafka"].events
    (shared,) = memory["partner"].events
    assert full.context["user_agent"] == BROWSER
    assert shared.id == full.id
    assert shared.context == {}
    assert shared.dimensions == {
        "auction_id": "a1",
        "impression_id": "i1",
        "bid_id": "b1",
        "campaign_id": "c1",
        "currency": "USD",
        "billable": True,
    }
    assert shared.metrics == full.metrics == {"billed_impressions": 1, "spend_micros": 1500}


def test_a_retried_notice_keeps_its_id_and_other_events_do_not_collide():
    client, memory = client_for()
    for _ in range(2):
        get(client, "/bill", aid="a1", iid="i1", bid="b1", price="2")
    get(client, "/win", aid="a1", iid="i1", bid="b1", price="2")
    get(client, "/vast/start", cid="c", aid="a1", iid="i1", bid="b1")
    get(client, "/vast/complete", cid="c", aid="a1", iid="i1", bid="b1")
    get(client, "/bill", aid="a1", price="2")  # no impression or bid id: the auction's own id
    get(client, "/bill", aid="a1", iid="", bid="", price="2")  # its retry, empty ids absent
    ids = [e.id for e in memory["kafka"].events]
    assert ids[0] == ids[1]
    assert ids[-1] == ids[-2]
    assert len(set(ids[1:-1])) == len(ids) - 2


def test_an_encrypted_price_is_decrypted_and_a_tampered_one_refused():
    client, memory = client_for(PRICE_KEYS)
    crypto = PriceCrypto.from_config(
        PRICE_KEYS["TRACKER_PRICE_ENCRYPTION_KEY"], PRICE_KEYS["TRACKER_PRICE_INTEGRITY_KEY"]
    )
    token = crypto.encrypt(2_750_000, b"0123456789abcdef")
    ok = get(client, "/bill", aid="a1", iid="i1", bid="b1", price=token)
    tampered = token[:30] + ("A" if token[30] != "A" else "B") + token[31:]
    refused = get(client, "/bill", aid="a2", iid="i1", bid="b1", price=tampered)
    assert ok.status_code == 204
    assert refused.status_code == 400
    assert list(refused.json["errors"]) == ["price"]
    (event,) = memory["kafka"].events
    assert event.metrics == {"billed_impressions": 1, "spend_micros": 2750}
    assert event.dimensions["price_encrypted"] is True


def test_any_unsubstituted_macro_is_refused_with_its_reason():
    client, memory = client_for()
    resp = get(client, "/win", aid="${AUCTION_ID}", price="1")
    assert resp.status_code == 400
    assert resp.json["reason"] == "unsubstituted_macro"
    assert resp.json["errors"] == {
        "auction_id": [
            "Contains the literal macro ${AUCTION_ID}: the caller did not substitute it."
        ]
    }
    assert get(client, "/loss", aid="a", loss="%24%7BAUCTION_LOSS%7D").json["reason"] == (
        "unsubstituted_macro"
    )
    assert memory["kafka"].events == []


def test_device_headers_replace_ip_and_user_agent_only_when_valid():
    client, memory = client_for({"TRACKER_AD_INSERTERS": "127.0.0.1/32"})
    get(
        client,
        "/vast/start",
        headers={"X-Device-IP": "2001:db8:1:2::9", "X-Device-User-Agent": "TV/1"},
        cid="c",
    )
    get(client, "/vast/start", headers={"X-Device-IP": "not-an-ip"}, cid="c")
    get(client, "/imp", headers={"X-Device-IP": "2001:db8:1:2::9"}, cid="c")
    video, bad, pixel = memory["kafka"].events
    assert video.context["ip"] == "2001:db8:1::"
    assert video.context["user_agent"] == "TV/1"
    assert bad.context["ip"] == "127.0.0.0"
    assert pixel.context["ip"] == "127.0.0.0"  # /imp does not trust device headers


@pytest.mark.parametrize("inserters", ["", "10.0.0.0/8, 192.0.2.7"])
def test_device_headers_from_a_caller_that_is_no_ad_inserter_are_ignored(inserters):
    client, memory = client_for({"TRACKER_AD_INSERTERS": inserters})
    headers = {"X-Device-IP": "198.51.100.23", "X-Device-User-Agent": "curl/8.0"}
    get(client, "/vast/start", headers=headers, cid="c")
    (event,) = memory["kafka"].events
    assert event.context["ip"] == "127.0.0.0"
    assert event.context["user_agent"] == BROWSER


def test_device_headers_are_believed_from_a_listed_inserter_only():
    client, memory = client_for({"TRACKER_AD_INSERTERS": "192.0.2.7/32"})
    for caller in ("192.0.2.7", "192.0.2.8"):
        client.simulate_get(
            "/vast/start",
            params={"cid": "c"},
            headers={"X-Device-IP": "198.51.100.23"},
            remote_addr=caller,
        )
    listed, unlisted = memory["kafka"].events
    assert listed.context["ip"] == "198.51.100.0"
    assert unlisted.context["ip"] == "192.0.2.0"


def test_batch_limits():
    client, memory = client_for()
    items = [{"event": "win", "aid": f"a{i}", "price": "1"} for i in range(101)]
    too_many = client.simulate_post("/events", json=items)
    assert too_many.status_code == 413
    assert too_many.json["reason"] == "batch_too_large"
    assert client.simulate_post("/events", json={"event": "win"}).json["reason"] == "invalid_json"
    assert client.simulate_get("/events").status_code == 405
    assert memory["kafka"].events == []
    ok = client.simulate_post("/events", json=items[:100])
    assert [r["status"] for r in ok.json["results"]] == ["accepted"] * 100
    assert len(memory["kafka"].events) == 100


def test_a_redirect_never_leaks_into_later_responses():
    client, _ = client_for()
    click = get(client, "/click", cid="c", url="https://www.example.com/")
    assert click.status_code == 302
    pixel = get(client, "/imp", cid="c")
    assert "location" not in pixel.headers
    assert pixel.headers["cache-control"] == "no-cache, no-store, must-revalidate, private"


def test_a_refused_click_goes_to_the_fallback_when_configured(tmp_path):
    text = (
        (ROOT / "config" / "tracker.yaml")
        .read_text()
        .replace(
            "# fallback_url: https://www.example.com/", "fallback_url: https://www.example.com/safe"
        )
    )
    path = tmp_path / "tracker.yaml"
    path.write_text(text)
    tracker, memory = build_app(load_file(path, {}))
    client = falcon.testing.TestClient(tracker.wsgi)
    resp = get(client, "/click", cid="c", url="https://evil.example.net/")
    assert resp.status_code == 302
    assert resp.headers["location"] == "https://www.example.com/safe"
    assert resp.headers["x-tracker-error"].startswith("unlisted_host")
    assert memory["kafka"].events == []


def test_sign_url_prints_the_url_the_docs_show(capsys, monkeypatch):
    monkeypatch.setenv("TRACKER_CLICK_KEYS", EXAMPLE_KEYS["TRACKER_CLICK_KEYS"])
    args = ["sign-url", "--base", "http://127.0.0.1:8080/click"]
    args += ["--landing", "https://shop.example.org/sale?clk={click_id}&c={campaign_id}"]
    for param in ("cid=summer-sale", "crid=banner-1", "aid=auc-9", "iid=imp-1", "bid=bid-3"):
        args += ["--param", param]
    assert main(args) == 0
    url = capsys.readouterr().out.strip()
    assert url in (ROOT / "docs" / "events.md").read_text()
    monkeypatch.delenv("TRACKER_CLICK_KEYS")
    assert main(args) == 2


def test_bots_are_flagged_on_pixels():
    client, memory = client_for()
    get(
        client,
        "/imp",
        headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"},
        cid="c",
    )
    get(client, "/imp", cid="c")
    bot, human = memory["kafka"].events
    assert (bot.dimensions["is_bot"], human.dimensions["is_bot"]) == (True, False)


def test_json_events_are_serialisable():
    client, memory = client_for()
    get(client, "/loss", aid="a", loss="102", price="1.1")
    assert json.loads(memory["log"].events[0].to_json())["dimensions"]["loss_reason_name"] == (
        "Lost to Higher Bid"
    )
