"""Event identity (docs/event.md): the same real-world event gets the same id, others do not."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import ROOT
from tracker.config import ConfigError, load_file, load_text
from tracker.intake.fields.mapping import EVENT_ID_NAMESPACE, EventMapper

CONFIG = load_file(ROOT / "config" / "tracker.yaml", {})
IDS = {"auction_id": "auc-1", "impression_id": "imp-1", "bid_id": "bid-1"}


def mapper(path: str) -> EventMapper:
    return EventMapper(CONFIG.paths[path])


def todays_formula(event_type: str, *parts: str) -> str:
    """The id every complete notice had before identity was redesigned."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join([event_type, *parts])))


# Ids the shipped config gave before the change, computed on the previous main: a notice
# retried across the upgrade must find the same id (else the banker spends it twice).
GOLDEN = [
    ("billing", IDS, "116b5478-b22f-5754-893c-28fdd72f85bb"),
    ("impression", IDS, "b1b480fd-3888-5d18-acef-d60012982a63"),
    (
        "conversion",
        {**IDS, "order_id": "o-1", "click_id": "c-1"},
        "df5ba157-90df-5533-9045-1b28322a4822",
    ),
    ("conversion", IDS, "0cc5fcf4-e644-5b17-94a1-ad50bd584b4d"),
    ("video", {**IDS, "vast_event": "start"}, "953ebe90-9ff6-5633-ada5-69379c066526"),
    (
        "video",
        {**IDS, "vast_event": "progress", "offset": "00:00:05"},
        "2e79803c-ae4a-5499-a391-3da5a8fa7ec5",
    ),
    # A once-per-view event's playhead does not count (docs/events.md's example id).
    (
        "video",
        {**IDS, "vast_event": "midpoint", "playhead": "00:00:15.020"},
        "ca2691c5-e8e6-5805-9869-ce534cb6bd80",
    ),
]


@pytest.mark.parametrize(("path", "values", "expected"), GOLDEN)
def test_a_complete_id_is_the_one_it_had_before_the_change(path, values, expected):
    assert mapper(path).event_id(values) == expected


ascii_ids = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12)


@settings(max_examples=200)
@given(ascii_ids, ascii_ids, ascii_ids)
def test_complete_notices_keep_todays_formula(aid, iid, bid):
    values = {"auction_id": aid, "impression_id": iid, "bid_id": bid}
    for path, event_type in (("billing", "billing"), ("win", "win"), ("loss", "loss")):
        assert mapper(path).event_id(values) == todays_formula(event_type, aid, iid, bid)
    assert mapper("impression").event_id(values) == todays_formula("impression", aid, iid, bid)


def test_a_notice_with_only_its_auction_id_has_a_stable_id_of_its_own():
    bill = mapper("billing")
    alone = bill.event_id({"auction_id": "auc-1"})
    assert alone is not None
    assert bill.event_id({"auction_id": "auc-1", "impression_id": "", "bid_id": ""}) == alone
    assert bill.event_id({"auction_id": "auc-1", "impression_id": "imp-1"}) not in (alone, None)
    assert bill.event_id({"auction_id": "auc-2"}) != alone
    assert mapper("win").event_id({"auction_id": "auc-1"}) != alone  # another event type


def test_an_impression_without_its_imp_id_keeps_a_random_id():
    # Several impressions of one auction share its id: only the imp id tells them apart.
    assert mapper("impression").event_id({"auction_id": "auc-1", "bid_id": "b"}) is None


def test_separator_in_a_value_no_longer_collides():
    bill = mapper("billing")
    one = bill.event_id({"auction_id": "a\x1fb", "impression_id": "c", "bid_id": "d"})
    two = bill.event_id({"auction_id": "a", "impression_id": "b\x1fc", "bid_id": "d"})
    assert one != two


def test_vast_events_differ_by_playhead_and_error_code():
    video = mapper("video")
    pause = {**IDS, "vast_event": "pause"}
    at5, at10 = (video.event_id({**pause, "playhead": ph}) for ph in ("00:00:05", "00:00:10"))
    assert at5 != at10
    assert video.event_id({**pause, "playhead": "00:00:05"}) == at5
    error = {**IDS, "vast_event": "error"}
    assert video.event_id({**error, "error_code": "303"}) != video.event_id(
        {**error, "error_code": "402"}
    )


def test_a_conversion_postback_is_one_event_by_click_and_order():
    conv = mapper("conversion")
    postback = {"click_id": "clk-1", "order_id": "o-1", "campaign_id": "c"}
    assert conv.event_id(postback) == conv.event_id(dict(postback))
    assert conv.event_id(postback) is not None
    assert conv.event_id({**postback, "order_id": "o-2"}) != conv.event_id(postback)
    # A click without an order may convert again: no identity, a random id.
    assert conv.event_id({"click_id": "clk-1"}) is None


VALUE = st.one_of(st.none(), st.just(""), st.text(max_size=6))


@settings(max_examples=500)
@given(st.lists(st.tuples(VALUE, VALUE, VALUE, VALUE), min_size=2, max_size=2))
def test_different_values_never_share_an_id(pair):
    """Any two requests whose present id values differ get different ids."""
    video = mapper("video")
    names = ("auction_id", "impression_id", "bid_id", "playhead")
    a, b = ({n: v for n, v in zip(names, vals, strict=True)} for vals in pair)
    a["vast_event"] = b["vast_event"] = "pause"

    def present(values):
        return {k: v for k, v in values.items() if v not in (None, "")}

    ida, idb = video.event_id(a), video.event_id(b)
    if ida is not None and idb is not None:
        assert (ida == idb) == (present(a) == present(b))


def test_an_identity_naming_unknown_fields_is_refused_with_each_path():
    shipped = (ROOT / "config" / "tracker.yaml").read_text()
    bad = shipped.replace(
        "extra_when: {vast_event: [pause,",
        "extra_when: {vast_evnt: [pause,",
    ).replace("fallback: [click_id, order_id]", "fallback: [clik_id, order_id]")
    with pytest.raises(ConfigError) as refused:
        load_text(bad, {})
    assert refused.value.errors == [
        "paths.conversion.event_id.fallback.0: unknown field 'clik_id'",
        "paths.video.event_id.extra_when.vast_evnt: unknown field 'vast_evnt'",
    ]
