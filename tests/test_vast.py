"""The vast preprocessor, and the VAST player stand-in used by the tests."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from marshmallow import ValidationError

from tests.vast_player import FIXTURES, fill_vast_macros, format_playhead, play, tracking_urls
from tracker.event import Event
from tracker.preprocessors.vast import (
    ERROR_NAMES,
    EVENT_METRICS,
    VastMetrics,
    VastMetricsOptions,
    error_name,
    parse_percent,
    parse_time,
)

INLINE = (FIXTURES / "inline_linear.xml").read_text()
NS = {"v": "http://www.iab.com/VAST"}

#: Query names of the fixture's URLs -> dimension names, as in the tracker config.
QUERY_DIMENSIONS = {
    "cid": "campaign_id",
    "crid": "creative_id",
    "li": "line_item_id",
    "aid": "auction_id",
    "iid": "impression_id",
    "bid": "bid_id",
    "ph": "playhead",
    "off": "offset",
    "dur": "duration",
    "err": "error_code",
}


def vast(**options):
    return VastMetrics("vast", VastMetricsOptions().load(options))


def vast_event(kind, **dimensions):
    return Event(type="vast", path="vast", dimensions={"vast_event": kind, **dimensions})


def run(kind, **dimensions):
    return vast().process(vast_event(kind, **dimensions))


# Time formats ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("00:00:11.355", 11_355),
        ("00:00:30", 30_000),
        ("00:00:30.000", 30_000),
        ("01:02:03.004", 3_723_004),
        ("12:00:00", 43_200_000),
        ("99:59:59.999", 359_999_999),
        ("0:00:05", 5_000),
        ("00:00:05.5", 5_500),
        ("00:00:05.12", 5_120),
        ("00:00:05.123456", 5_123),
    ],
)
def test_parse_time(text, millis):
    assert parse_time(text) == millis


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1:2",
        "00:05",
        "30",
        "00:60:00",
        "00:00:60",
        "100:00:00",
        "00:00:05.",
        "00:00:05,000",
        "-00:00:05",
        "00:00:05 ",
        "0x:00:05",
        "25%",
        "00:00:1\u0663",
    ],
)
def test_parse_time_refuses(text):
    assert parse_time(text) is None


@pytest.mark.parametrize(
    ("text", "percent"), [("25%", 25.0), ("0%", 0.0), ("100%", 100.0), ("12.5%", 12.5)]
)
def test_parse_percent(text, percent):
    assert parse_percent(text) == percent


@pytest.mark.parametrize("text", ["101%", "25", "%", "-5%", "25 %", "1e2%", "25%%"])
def test_parse_percent_refuses(text):
    assert parse_percent(text) is None


# The event -------------------------------------------------------------------


def test_start_with_playhead_and_duration():
    event = run(
        "start",
        campaign_id="camp-7",
        playhead="00:00:00.120",
        duration="00:00:30.000",
    )
    assert event.dimensions == {"vast_event": "start", "campaign_id": "camp-7"}
    assert event.metrics == {
        "playhead_ms": 120,
        "duration_ms": 30_000,
        "watch_ms": 120,
        "vast_events": 1,
        "starts": 1,
    }


@pytest.mark.parametrize(("kind", "counter"), sorted(EVENT_METRICS.items()))
def test_every_event_is_counted(kind, counter):
    event = run(kind)
    counters = {k: v for k, v in event.metrics.items() if k != "watch_ms"}
    assert counters == {"vast_events": 1, counter: 1}


def test_counter_names_are_distinct_snake_case():
    assert len(set(EVENT_METRICS.values())) == len(EVENT_METRICS)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in EVENT_METRICS.values())


def test_existing_metrics_are_kept():
    event = vast_event("start")
    event.metrics["price_micros"] = 1_250_000
    assert vast().process(event).metrics["price_micros"] == 1_250_000


def test_events_without_vast_event_are_untouched():
    dimensions = {"playhead": "junk", "duration": "00:00:30", "error_code": "x"}
    event = Event(type="impression", path="display", dimensions=dict(dimensions))
    assert vast().process(event) is event
    assert event.dimensions == dimensions
    assert event.metrics == {}


# watch_ms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "watch"),
    [
        ("start", 0),
        ("firstQuartile", 7_500),
        ("midpoint", 15_000),
        ("thirdQuartile", 22_500),
        ("complete", 30_000),
    ],
)
def test_watch_time_from_the_event_position(kind, watch):
    assert run(kind, duration="00:00:30").metrics["watch_ms"] == watch


def test_odd_duration_rounds_down():
    assert run("firstQuartile", duration="00:00:15.001").metrics["watch_ms"] == 3_750


@pytest.mark.parametrize("kind", ["firstQuartile", "midpoint", "thirdQuartile", "complete"])
def test_quartile_without_duration_has_no_watch_time(kind):
    assert "watch_ms" not in run(kind).metrics


def test_start_without_duration_is_at_zero():
    assert run("start").metrics["watch_ms"] == 0


@pytest.mark.parametrize(
    "kind", ["impression", "creativeView", "skip", "pause", "resume", "mute", "clickTracking"]
)
def test_other_events_need_a_playhead(kind):
    assert "watch_ms" not in run(kind, duration="00:00:30").metrics
    assert run(kind, playhead="00:00:12.250").metrics["watch_ms"] == 12_250


def test_playhead_wins_over_the_event_position():
    event = run("midpoint", playhead="00:00:15.020", duration="00:00:30")
    assert event.metrics["watch_ms"] == 15_020


def test_progress_watch_time_is_its_offset():
    event = run("progress", offset="00:00:10.000", duration="00:00:30")
    assert event.metrics["offset_ms"] == 10_000
    assert event.metrics["watch_ms"] == 10_000
    assert "offset" not in event.dimensions


def test_progress_prefers_the_playhead():
    event = run("progress", offset="00:00:10", playhead="00:00:10.040")
    assert event.metrics["watch_ms"] == 10_040
    assert event.metrics["offset_ms"] == 10_000


def test_progress_without_offset_or_playhead():
    assert "watch_ms" not in run("progress", duration="00:00:30").metrics


@pytest.mark.parametrize(("offset", "millis"), [("25%", 7_500), ("12.5%", 3_750), ("100%", 30_000)])
def test_percentage_offset_uses_the_duration(offset, millis):
    event = run("progress", offset=offset, duration="00:00:30")
    assert event.metrics["offset_ms"] == millis
    assert event.metrics["watch_ms"] == millis
    assert "vast_warning" not in event.dimensions


def test_percentage_offset_without_duration():
    event = run("progress", offset="25%")
    assert "offset_ms" not in event.metrics
    assert "watch_ms" not in event.metrics
    assert event.dimensions["vast_warning"] == "offset '25%' needs a duration"


def test_quartile_estimates_can_be_turned_off():
    processor = vast(quartile_watch_time=False)
    for kind in ("start", "firstQuartile", "complete"):
        event = processor.process(vast_event(kind, duration="00:00:30"))
        assert "watch_ms" not in event.metrics
    event = processor.process(vast_event("complete", playhead="00:00:29.980"))
    assert event.metrics["watch_ms"] == 29_980
    event = processor.process(vast_event("progress", offset="00:00:10"))
    assert event.metrics["watch_ms"] == 10_000


# Absent and invalid values --------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["[ADPLAYHEAD]", "[CONTENTPLAYHEAD]", "-1", "-2", "", "  ", " [ADPLAYHEAD] "]
)
def test_unsubstituted_or_unknown_playhead_is_absent(value):
    event = run("pause", playhead=value, duration="00:00:30")
    assert event.dimensions == {"vast_event": "pause"}
    assert event.metrics == {"duration_ms": 30_000, "vast_events": 1, "pauses": 1}


@pytest.mark.parametrize("name", ["playhead", "duration", "offset"])
def test_invalid_time_is_dropped_with_a_warning(name):
    event = run("firstQuartile", **{name: "1:2"})
    assert name not in event.dimensions
    assert f"{name}_ms" not in event.metrics
    assert event.dimensions["vast_warning"] == f"invalid {name} '1:2'"
    assert event.metrics["first_quartiles"] == 1


@pytest.mark.parametrize("offset", ["150%", "abc%", "-5%"])
def test_invalid_percentage_offset(offset):
    event = run("progress", offset=offset, duration="00:00:30")
    assert event.dimensions["vast_warning"] == f"invalid offset {offset!r}"
    assert "offset_ms" not in event.metrics


def test_invalid_duration_leaves_quartiles_without_watch_time():
    event = run("midpoint", duration="30")
    assert "watch_ms" not in event.metrics
    assert event.dimensions["vast_warning"] == "invalid duration '30'"


def test_every_problem_is_reported():
    event = run("progress", playhead="soon", duration="00:00:30", offset="later")
    assert event.dimensions["vast_warning"] == "invalid playhead 'soon'; invalid offset 'later'"
    assert event.metrics["duration_ms"] == 30_000


def test_long_garbage_is_shortened_in_the_warning():
    event = run("pause", playhead="x" * 5_000)
    warning = event.dimensions["vast_warning"]
    assert warning == f"invalid playhead '{'x' * 37}...'"


def test_non_string_values_do_not_raise():
    event = run("start", playhead=12, duration=None)
    assert event.dimensions["vast_warning"] == "invalid playhead '12'"


# Errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("100", "XML parsing error"),
        ("303", "No VAST response after one or more Wrappers"),
        ("402", "Timeout of MediaFile URI"),
        ("900", "Undefined Error"),
        ("901", "General VPAID error"),
        ("902", "General InteractiveCreativeFile error"),
        ("103", "XML error"),
        ("207", "Trafficking error"),
        ("399", "Wrapper error"),
        ("404", "Linear error"),
        ("599", "NonLinearAds error"),
        ("699", "CompanionAds error"),
        ("903", "Undefined Error"),
        ("700", "Unknown error"),
        ("42", "Unknown error"),
        ("1000", "Unknown error"),
    ],
)
def test_error_code_and_name(code, name):
    event = run("error", error_code=code)
    assert event.dimensions == {"vast_event": "error", "error_code": int(code), "error_name": name}
    assert event.metrics["errors"] == 1


@pytest.mark.parametrize("code", [None, "[ERRORCODE]", "", "-1"])
def test_missing_error_code(code):
    dimensions = {} if code is None else {"error_code": code}
    event = run("error", **dimensions)
    assert event.dimensions == {"vast_event": "error", "error_name": "Unknown error"}


@pytest.mark.parametrize("code", ["abc", "40x", "4.5", "-7", "9" * 20, "\u0663\u0660\u0663"])
def test_invalid_error_code(code):
    event = run("error", error_code=code)
    assert "error_code" not in event.dimensions
    assert event.dimensions["error_name"] == "Unknown error"
    assert event.dimensions["vast_warning"].startswith("invalid error_code ")


def test_integer_error_code_is_accepted():
    assert run("error", error_code=405).dimensions["error_name"] == "Problem displaying MediaFile"


def test_error_code_of_other_events_is_left_alone():
    assert run("start", error_code="[ERRORCODE]").dimensions["error_code"] == "[ERRORCODE]"


def test_error_table_matches_vast_4_3():
    # VAST 4.3 section 2.3.6.3; 404 is not defined.
    assert sorted(ERROR_NAMES) == [
        *(100, 101, 102),
        *range(200, 207),
        *range(300, 305),
        *(400, 401, 402, 403, *range(405, 412)),
        *range(500, 504),
        *range(600, 605),
        *(900, 901, 902),
    ]
    assert error_name(None) == "Unknown error"


# Options ---------------------------------------------------------------------


def test_options():
    assert VastMetricsOptions().load({}) == {"quartile_watch_time": True}
    with pytest.raises(ValidationError):
        VastMetricsOptions().load({"quartile_watch_time": "sometimes"})
    with pytest.raises(ValidationError):
        VastMetricsOptions().load({"unknown": 1})


# The player stand-in and the fixture ------------------------------------------


def query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def test_fixture_is_a_vast_4_2_inline_linear_ad():
    root = ET.fromstring(INLINE)
    assert root.tag == "{http://www.iab.com/VAST}VAST"
    assert root.get("version") == "4.2"
    inline = root.find("v:Ad/v:InLine", NS)
    for required in ("AdSystem", "Impression", "AdServingId", "AdTitle", "Creatives"):
        assert inline.find(f"v:{required}", NS) is not None, required
    creative = inline.find("v:Creatives/v:Creative", NS)
    assert creative.find("v:UniversalAdId", NS).get("idRegistry")
    linear = creative.find("v:Linear", NS)
    assert linear.findtext("v:Duration", namespaces=NS) == "00:00:30"
    assert len(linear.findall("v:MediaFiles/v:MediaFile", NS)) == 3


def test_every_tracking_event_is_found_once():
    events = [event for event, _ in tracking_urls(INLINE)]
    assert sorted(events) == sorted(EVENT_METRICS)


def test_urls_match_their_event_and_carry_the_ids():
    for event, url in tracking_urls(INLINE):
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == ("http", "TRACKER", f"/vast/{event}")
        fields = query(url)
        assert {k: fields[k] for k in ("cid", "crid", "li", "aid", "iid", "bid")} == {
            "cid": "camp-7",
            "crid": "cr-42",
            "li": "li-3",
            "aid": "auc-1",
            "iid": "imp-1",
            "bid": "bid-1",
        }
        assert fields["dur"] == "00:00:30.000"
        assert fields["ph"] == "[ADPLAYHEAD]"
        assert fields["cb"] == "[CACHEBUSTING]"
        assert ("err" in fields) == (event == "error")
        assert ("off" in fields) == (event == "progress")


def test_progress_url_carries_its_offset_and_duration_matches():
    root = ET.fromstring(INLINE)
    tracking = root.find(".//v:Tracking[@event='progress']", NS)
    (url,) = [u for e, u in tracking_urls(INLINE) if e == "progress"]
    assert query(url)["off"] == tracking.get("offset") == "00:00:10.000"
    duration = root.findtext(".//v:Linear/v:Duration", namespaces=NS)
    assert parse_time(query(url)["dur"]) == parse_time(duration)


def test_error_url_has_the_error_code_macro():
    (url,) = [u for e, u in tracking_urls(INLINE) if e == "error"]
    assert query(url)["err"] == "[ERRORCODE]"


def test_click_through_is_not_a_tracking_url():
    assert not any("example.com" in url for _, url in tracking_urls(INLINE))


def test_host_is_replaced():
    urls = tracking_urls(INLINE, host="127.0.0.1:8000")
    assert all(url.startswith("http://127.0.0.1:8000/vast/") for _, url in urls)


def test_document_without_namespace():
    xml = (
        '<VAST version="4.2"><Ad><InLine><Impression><![CDATA[ http://t/i ]]></Impression>'
        "<Creatives><Creative><Linear><TrackingEvents>"
        '<Tracking event="start"><![CDATA[http://t/s]]></Tracking>'
        "</TrackingEvents></Linear></Creative></Creatives></InLine></Ad></VAST>"
    )
    assert tracking_urls(xml) == [("impression", "http://t/i"), ("start", "http://t/s")]


@pytest.mark.parametrize(
    ("millis", "text"),
    [(0, "00:00:00.000"), (11_355, "00:00:11.355"), (3_723_004, "01:02:03.004")],
)
def test_format_playhead(millis, text):
    assert format_playhead(millis) == text
    assert parse_time(text) == millis


def test_fill_macros_encodes_like_a_player():
    url = "http://t/vast/error?err=[ERRORCODE]&ph=[ADPLAYHEAD]&cb=[CACHEBUSTING]&x=[TIMESTAMP]"
    filled = fill_vast_macros(url, 11_355, 405, 1234)
    assert filled == "http://t/vast/error?err=405&ph=00%3A00%3A11.355&cb=00001234&x=[TIMESTAMP]"
    assert query(filled)["ph"] == "00:00:11.355"


def test_fill_macros_draws_an_eight_digit_cachebuster():
    filled = {query(fill_vast_macros("http://t/?cb=[CACHEBUSTING]"))["cb"] for _ in range(20)}
    assert all(re.fullmatch(r"[1-9]\d{7}", cb) for cb in filled)
    assert len(filled) > 1


def test_fill_macros_unknown_values():
    url = "http://t/?ph=[ADPLAYHEAD]&err=[ERRORCODE]"
    assert fill_vast_macros(url, cachebuster=1) == "http://t/?ph=-1&err=-1"
    assert fill_vast_macros(url, cachebuster=1, keep_unknown=True) == url


def test_play_fires_events_in_order_with_their_playheads():
    fired = play(tracking_urls(INLINE), {"impression": 0, "start": 0, "midpoint": 15_000}, 402)
    assert [event for event, _ in fired] == ["impression", "start", "midpoint", "error"]
    assert query(fired[2][1])["ph"] == "00:00:15.000"
    assert query(fired[3][1])["err"] == "402"
    assert query(fired[3][1])["ph"] == "-1"
    assert not any("[" in url for _, url in fired)


def test_played_urls_become_the_expected_events():
    """The fixture, filled by the player, through the preprocessor as the config maps it."""
    playheads = {
        "impression": 0,
        "creativeView": 0,
        "start": 0,
        "progress": 10_012,
        "firstQuartile": 7_510,
        "pause": 9_000,
        "midpoint": 15_005,
        "thirdQuartile": 22_500,
        "complete": 30_000,
    }
    processor = vast()
    events = []
    for kind, url in play(tracking_urls(INLINE), playheads, error_code=405):
        dimensions = {QUERY_DIMENSIONS[k]: v for k, v in query(url).items() if k != "cb"}
        events.append(processor.process(vast_event(kind, **dimensions)))
    by_kind = {event.dimensions["vast_event"]: event for event in events}
    assert by_kind["progress"].metrics == {
        "duration_ms": 30_000,
        "playhead_ms": 10_012,
        "offset_ms": 10_000,
        "watch_ms": 10_012,
        "vast_events": 1,
        "progress_events": 1,
    }
    assert by_kind["error"].dimensions["error_code"] == 405
    assert "watch_ms" not in by_kind["error"].metrics
    assert all("vast_warning" not in event.dimensions for event in events)
    assert max(event.metrics.get("watch_ms", 0) for event in events) == 30_000
    assert sum(event.metrics.get("completes", 0) for event in events) == 1
    assert sum(event.metrics.get("starts", 0) for event in events) == 1
