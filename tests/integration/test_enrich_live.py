"""Device, OS, browser and country over real HTTP, into real Kafka (issue 20).

The shipped config, with a small test GeoIP database (tests/geodb.py) named by
``TRACKER_GEOIP_DB``, 127.0.0.1 as a trusted proxy (its ``X-Forwarded-For`` is
believed) and as an ad inserter (its ``X-Device-*`` headers are believed).
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
import yaml

from tests.geodb import write_db
from tests.integration.live import Server, consume, send_all
from tests.test_useragent import REAL_WORLD, expected

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICE = ("device_type", "os", "os_version", "browser", "browser_version")
SMART_TV = REAL_WORLD["samsung-tv"][0]


@pytest.fixture(scope="module")
def server(tmp_path_factory, broker):
    tmp = tmp_path_factory.mktemp("enrich")
    database = write_db(tmp / "geo" / "country.mmdb")
    server = Server(tmp, broker, TRACKER_AD_INSERTERS="127.0.0.1", TRACKER_GEOIP_DB=str(database))
    config = yaml.safe_load(server.config.read_text())
    config["server"]["trusted_proxies"] = ["127.0.0.1/32"]
    server.config.write_text(yaml.safe_dump(config, sort_keys=False))
    server.setup_topics()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def events(server):
    """Send every request of the module once; return the events by campaign id."""
    requests = [
        ("GET", f"/imp?cid=ua-{name}", None, {"User-Agent": user_agent})
        for name, (user_agent, _) in REAL_WORLD.items()
    ]
    chrome = REAL_WORLD["chrome-windows"][0]
    requests += [
        # The peer itself (127.0.0.1) is private: no country.
        ("GET", "/imp?cid=geo-peer", None, {"User-Agent": chrome}),
        # Through the trusted proxy: the client is the last untrusted hop.
        (
            "GET",
            "/imp?cid=geo-proxy",
            None,
            {"User-Agent": chrome, "X-Forwarded-For": "198.51.100.7"},
        ),
        ("GET", "/t/page?page=x", None, {"User-Agent": chrome, "X-Forwarded-For": "2001:db8::5"}),
        # An SSAI server names the device: its address, its user agent.
        (
            "GET",
            "/vast/start?cid=geo-ssai",
            None,
            {
                "User-Agent": "ssai/1.0",
                "X-Device-IP": "203.0.113.9",
                "X-Device-User-Agent": SMART_TV,
            },
        ),
        # Bad input is enriched as far as it goes, never refused.
        ("GET", "/imp?cid=bad-long", None, {"User-Agent": chrome + " " + "x" * 5_000}),
        ("GET", "/imp?cid=bad-ip", None, {"User-Agent": chrome, "X-Forwarded-For": "10.9.8.7"}),
    ]
    answers = send_all(server.port, requests)
    # The pixels answer 200, the page view 204: nothing is refused.
    assert {status for status, _, _ in answers} == {200, 204}
    topics = [server.topic("tracker-impressions"), server.topic("tracker-video")]
    topics.append(server.topic("tracker-events"))
    received = consume(topics, expected=len(requests))
    by_campaign = {}
    for _, _, event in received:
        key = event["dimensions"].get("campaign_id") or event["path"]
        by_campaign[key] = event
    return by_campaign


@pytest.mark.parametrize("name", sorted(REAL_WORLD))
def test_real_world_user_agents_carry_their_device(events, name):
    dimensions = events[f"ua-{name}"]["dimensions"]
    assert {k: dimensions[k] for k in DEVICE if k in dimensions} == expected(REAL_WORLD[name][1])
    assert dimensions["is_bot"] is (name == "googlebot")


def test_country_through_a_trusted_proxy(events):
    event = events["geo-proxy"]
    assert event["dimensions"]["country"] == "DE"
    assert event["context"]["ip"] == "198.51.100.0"
    assert "198.51.100.7" not in str(event)


def test_country_of_an_ipv6_client_on_a_browser_path(events):
    event = events["web_page"]
    assert event["dimensions"]["country"] == "JP"
    assert event["context"]["ip"] == "2001:db8::"


def test_country_and_device_through_ssai_device_headers(events):
    event = events["geo-ssai"]
    dimensions = event["dimensions"]
    assert (dimensions["country"], dimensions["device_type"], dimensions["os"]) == (
        "FR",
        "tv",
        "Tizen",
    )
    assert event["context"]["ip"] == "203.0.113.0"


def test_no_country_for_a_private_address(events, server):
    assert "country" not in events["geo-peer"]["dimensions"]
    assert "country" not in events["bad-ip"]["dimensions"]
    assert server.metric("tracker_enrichment_failures_total", kind="not_found") >= 2


def test_a_long_user_agent_is_parsed_from_its_start_and_counted(events, server):
    dimensions = events["bad-long"]["dimensions"]
    assert (dimensions["device_type"], dimensions["browser"]) == ("desktop", "Chrome")
    assert server.metric("tracker_enrichment_failures_total", kind="too_long") == 1


def test_a_10_kb_user_agent_is_refused_before_any_parsing(server):
    # Over the server's header field limit (8190 bytes): a 431, never a 5xx.
    status, _, _ = server.get("/imp?cid=huge", {"User-Agent": "Mozilla/5.0 " + "x" * 10_000})
    assert status == 431


def test_readiness_with_the_database(server):
    assert server.get("/readyz")[0] == 200


def test_without_a_database_the_tracker_runs_and_says_so_once(tmp_path, broker):
    server = Server(tmp_path, broker, TRACKER_GEOIP_DB=str(tmp_path / "absent.mmdb"))
    server.setup_topics()
    server.start()
    try:
        target = "/imp?cid=" + quote("no-db")
        assert server.get(target, {"User-Agent": REAL_WORLD["chrome-windows"][0]})[0] == 200
        assert server.get("/readyz")[0] == 200
        (_, _, event), *_ = consume([server.topic("tracker-impressions")], expected=1, settle=1)
        assert "country" not in event["dimensions"]
        assert event["dimensions"]["device_type"] == "desktop"
    finally:
        server.stop()
    lines = [
        line for line in server.output.read_text().splitlines() if "no GeoIP database at" in line
    ]
    # Once per worker, and nowhere else.
    assert len(lines) == server.worker_count
