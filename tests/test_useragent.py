"""The user_agent preprocessor, client hints, and the parser behind the bot flag."""

from __future__ import annotations

import falcon.testing
import pytest

from tests.apps import build_app
from tests.metrics import counted
from tracker.config import load_file
from tracker.event import Event
from tracker.preprocessors.bots import BotFilter, BotFilterOptions
from tracker.preprocessors.useragent import UserAgentOptions, UserAgentParser

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

#: Real-world user agents and the dimensions they must give (tests/integration reuses it).
REAL_WORLD = {
    "chrome-windows": (CHROME_WINDOWS, ("desktop", "Windows", "10", "Chrome", "131")),
    "safari-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        ("mobile", "iOS", "18", "Mobile Safari", "18"),
    ),
    "safari-ipad": (
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.6 Mobile/15E148 Safari/604.1",
        ("tablet", "iOS", "17", "Mobile Safari", "17"),
    ),
    "chrome-android": (CHROME_ANDROID, ("mobile", "Android", "10", "Chrome Mobile", "131")),
    "android-tablet": (
        "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ("tablet", "Android", "13", "Chrome", "131"),
    ),
    "firefox-linux": (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ("desktop", "Linux", None, "Firefox", "133"),
    ),
    "safari-mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        ("desktop", "Mac OS X", "10", "Safari", "18"),
    ),
    "samsung-tv": (
        "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "76.0.3809.146/6.0 TV Safari/537.36",
        ("tv", "Tizen", "6", "Safari", None),
    ),
    "lg-tv": (
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
        ("tv", "Web0S", None, "Chrome", "79"),
    ),
    "fire-tv": (
        "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233; wv) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/70.0.3538.110 Mobile Safari/537.36",
        ("tv", "Android", "9", "Chrome Mobile WebView", "70"),
    ),
    "playstation": (
        "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.0 Safari/605.1.15",
        ("console", None, None, "Safari", "13"),
    ),
    "googlebot": (GOOGLEBOT, ("bot", None, None, "Googlebot", "2")),
}
NAMES = ("device_type", "os", "os_version", "browser", "browser_version")


def expected(values: tuple) -> dict:
    """Return the dimensions a row of :data:`REAL_WORLD` gives (unknown ones are absent)."""
    return {k: v for k, v in zip(NAMES, values, strict=True) if v is not None}


def parser(**options) -> UserAgentParser:
    p = UserAgentParser("device", UserAgentOptions().load(options))
    p.open()
    return p


def event(user_agent: str | None, **context) -> Event:
    return Event(
        type="impression", path="impression", context={"user_agent": user_agent, **context}
    )


@pytest.mark.parametrize("name", sorted(REAL_WORLD))
def test_real_world_user_agents(name):
    user_agent, values = REAL_WORLD[name]
    assert parser().process(event(user_agent)).dimensions == expected(values)


def test_bot_flag_wins_over_the_device():
    flagged = event(CHROME_WINDOWS)
    flagged.dimensions["is_bot"] = True
    assert parser().process(flagged).dimensions["device_type"] == "bot"
    renamed = event(CHROME_WINDOWS)
    renamed.dimensions["suspect"] = True
    assert parser(bot_dimension="suspect").process(renamed).dimensions["device_type"] == "bot"


def test_missing_user_agent_is_other_and_counted():
    before = counted("tracker_enrichment_failures_total", preprocessor="device", kind="missing")
    assert parser().process(event(None)).dimensions == {"device_type": "other"}
    after = counted("tracker_enrichment_failures_total", preprocessor="device", kind="missing")
    assert after == before + 1


@pytest.mark.parametrize(
    ("user_agent", "kind"),
    [
        (CHROME_WINDOWS + " " + "x" * 10_000, "too_long"),
        ("Mozilla/5.0 (Windows NT 10.0)\x00\x1b[31m Chrome/131.0.0.0", "control_characters"),
        ("\x7f", "control_characters"),
        ("zzzz", "unrecognised"),
    ],
)
def test_bad_user_agents_are_counted_not_fatal(user_agent, kind):
    labels = {"preprocessor": "device", "kind": kind}
    before = counted("tracker_enrichment_failures_total", **labels)
    dimensions = parser().process(event(user_agent)).dimensions
    assert dimensions["device_type"] in ("desktop", "other")
    assert counted("tracker_enrichment_failures_total", **labels) == before + 1


def test_long_user_agent_is_parsed_from_its_start():
    dimensions = parser().process(event(CHROME_WINDOWS + " " + "x" * 10_000)).dimensions
    assert dimensions == expected(REAL_WORLD["chrome-windows"][1])


@pytest.mark.parametrize(
    ("user_agent", "hints", "dimensions"),
    [
        # Reduced user agents freeze Windows at 10: a platform version of 13+ is Windows 11.
        (
            CHROME_WINDOWS,
            {"platform": '"Windows"', "platform_version": '"15.0.0"'},
            ("Windows", "11"),
        ),
        (
            CHROME_WINDOWS,
            {"platform": '"Windows"', "platform_version": '"10.0.0"'},
            ("Windows", "10"),
        ),
        # ...and Android at 10.
        (
            CHROME_ANDROID,
            {"platform": '"Android"', "platform_version": '"14.0.0"'},
            ("Android", "14"),
        ),
        (
            CHROME_WINDOWS,
            {"platform": '"macOS"', "platform_version": '"14.6.1"'},
            ("Mac OS X", "14"),
        ),
        # A platform without a version replaces the user agent's OS and its version.
        (CHROME_WINDOWS, {"platform": '"Linux"'}, ("Linux", None)),
        # Unknown or garbled hints change nothing.
        (CHROME_WINDOWS, {"platform": '"Plan 9"', "platform_version": '"1"'}, ("Windows", "10")),
        (
            CHROME_WINDOWS,
            {"platform": '"Windows"', "platform_version": "x" * 64},
            ("Windows", "10"),
        ),
    ],
)
def test_client_hints_win_over_the_reduced_user_agent(user_agent, hints, dimensions):
    result = parser().process(event(user_agent, client_hints=hints))
    assert (result.dimensions.get("os"), result.dimensions.get("os_version")) == dimensions
    assert "client_hints" not in result.context


def test_mobile_hint_makes_a_desktop_user_agent_mobile():
    result = parser().process(event(CHROME_WINDOWS, client_hints={"mobile": "?1"}))
    assert result.dimensions["device_type"] == "mobile"


def test_options_are_checked():
    assert UserAgentOptions().load({}) == {"cache_size": 8192, "bot_dimension": "is_bot"}
    with pytest.raises(Exception, match="cache_size"):
        UserAgentOptions().load({"cache_size": 0})


# The parser behind the bot flag: crawlers the shipped patterns do not name.
PARSER_ONLY_CRAWLERS = [
    "Mozilla/5.0 (compatible; Yeti/1.1; +http://naver.me/spd)",
    "Mozilla/5.0 (compatible; Qwantify/2.4w; +https://www.qwant.com/)/2.4w",
    "Mozilla/5.0 (compatible; heritrix/3.4.0 +http://example.org)",
    "Nutch/2.3",
]


@pytest.mark.parametrize("user_agent", PARSER_ONLY_CRAWLERS)
def test_parser_strengthens_the_bot_flag(user_agent):
    without = BotFilter("bots", BotFilterOptions().load({"parser": False}))
    without.open()
    assert without.process(event(user_agent)).dimensions == {"is_bot": False}
    with_parser = BotFilter("bots", BotFilterOptions().load({}))
    with_parser.open()
    flagged = with_parser.process(event(user_agent))
    assert flagged.dimensions == {"is_bot": True}
    assert parser().process(flagged).dimensions["device_type"] == "bot"


def test_parser_never_clears_a_pattern_verdict():
    bots = BotFilter("bots", BotFilterOptions().load({}))
    bots.open()
    # ua-parser calls this a browser (curl); the patterns say bot, and that stands.
    assert bots.process(event("curl/8.5.0")).dimensions == {"is_bot": True}
    assert bots.process(event(CHROME_WINDOWS)).dimensions == {"is_bot": False}


# Over the shipped config: browser paths get the dimensions, the hints come from headers,
# and server-to-server paths are never bot-flagged or dropped by user agent.


@pytest.fixture(scope="module")
def shipped():
    config = load_file("config/tracker.yaml", {})
    tracker, memory = build_app(config)
    return falcon.testing.TestClient(tracker.wsgi), memory["kafka"]


def test_shipped_impression_carries_the_device(shipped):
    client, kafka = shipped
    kafka.events.clear()
    headers = {
        "User-Agent": CHROME_WINDOWS,
        "Sec-CH-UA-Platform": '"Windows"',
        "Sec-CH-UA-Platform-Version": '"15.0.0"',
        "Sec-CH-UA-Mobile": "?0",
    }
    assert client.simulate_get("/imp", query_string="cid=c1", headers=headers).status_code == 200
    (sent,) = kafka.events
    assert {k: sent.dimensions.get(k) for k in (*NAMES, "is_bot")} == {
        "device_type": "desktop",
        "os": "Windows",
        "os_version": "11",
        "browser": "Chrome",
        "browser_version": "131",
        "is_bot": False,
    }
    assert set(sent.context) == {"ip", "user_agent", "referer"}


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/win", "aid=a1&price=1.5"),
        ("/bill", "aid=a1&price=1.5"),
        ("/loss", "aid=a1&loss=102"),
        ("/conv", "cid=c1&order=o1"),
    ],
)
def test_server_to_server_paths_ignore_the_user_agent(shipped, route, body):
    client, kafka = shipped
    kafka.events.clear()
    headers = {
        "User-Agent": "python-requests/2.32.3",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    result = client.simulate_post(route, body=body, headers=headers)
    assert result.status_code < 300, result.text
    (sent,) = kafka.events
    assert not {"is_bot", "device_type"} & set(sent.dimensions)


def test_the_fast_resolver_is_used():
    # google-re2 is a dependency: a first sight costs ~50 µs with it, ~750 µs without.
    assert parser().classifier.engine == "re2"


def test_ssai_device_user_agent_ignores_the_callers_client_hints():
    config = load_file("config/tracker.yaml", {"TRACKER_AD_INSERTERS": "10.0.0.1"})
    tracker, memory = build_app(config)
    client = falcon.testing.TestClient(tracker.wsgi)
    headers = {
        "User-Agent": CHROME_WINDOWS,
        "X-Device-User-Agent": REAL_WORLD["samsung-tv"][0],
        "Sec-CH-UA-Platform": '"Windows"',
        "Sec-CH-UA-Mobile": "?1",
    }
    result = client.simulate_get(
        "/vast/start", query_string="cid=c1", headers=headers, remote_addr="10.0.0.1"
    )
    assert result.status_code == 200
    (sent,) = memory["kafka"].events
    assert (sent.dimensions["device_type"], sent.dimensions["os"]) == ("tv", "Tizen")
    # The same hints from a browser itself are believed.
    memory["kafka"].events.clear()
    del headers["X-Device-User-Agent"]
    client.simulate_get("/vast/start", query_string="cid=c1", headers=headers)
    (sent,) = memory["kafka"].events
    assert (sent.dimensions["device_type"], sent.dimensions["os"]) == ("mobile", "Windows")
