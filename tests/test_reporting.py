"""Reporting without Kafka: rows from messages, the report's counting, formats, options.

The report is run on a real embedded ClickHouse (chdb) in a temporary directory;
the loader end to end, with Kafka, is tests/integration/test_reporting.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests import ROOT
from tracker.config import load_file
from tracker.event import Event
from tracker.reporting import cli, page, query, schema
from tracker.reporting.cli import event_topics
from tracker.reporting.store import open_store

chdb = pytest.importorskip("chdb", reason="the [reporting] extra is not installed")

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "moment", [0.0, 951_782_400.5, 1_796_526_327.154, 4_102_444_799.999, 9_000_000_000.0]
)
def test_received_at_is_read_to_the_millisecond(moment):
    event = Event(type="impression", path="impression", received_at=moment)
    text = event.to_dict()["received_at"]
    expected = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    assert schema.epoch_millis(text) == round(expected * 1000)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"type":"impression"}', "no string id and type"),
        (b'{"id":"x","type":"a","received_at":"yesterday"}', "not an RFC 3339 UTC time"),
        (b'{"id":"x","type":"a","received_at":"1969-12-31T23:59:59.000Z"}', "out of range"),
        (
            b'{"id":"x","type":"a","received_at":"2026-01-01T00:00:00Z","metrics":{"m":"1"}}',
            "metric 'm' is not a number",
        ),
    ],
)
def test_a_message_that_is_not_an_event_is_refused_with_its_reason(value, reason):
    with pytest.raises(schema.BadMessage, match=reason):
        schema.row(value, "t", 0, 7)


def test_typed_columns_come_from_the_maps(store):
    event = Event(
        type="billing",
        path="billing",
        dimensions={"campaign_id": "c", "billable": False, "is_bot": True, "seat_id": "s1"},
        metrics={"spend_micros": 3100, "billed_impressions": 0},
        received_at=NOW,
    )
    row = schema.row(event.to_json(), "tracker-billing", 2, 41)
    assert row["dimensions"] == {
        "campaign_id": "c",
        "billable": "false",
        "is_bot": "true",
        "seat_id": "s1",
    }
    head = schema.splice_head("tracker-billing", 2)
    store.insert(schema.EVENTS, [row], "checked")
    store.insert_raw(schema.EVENTS, schema.spliced(event.to_json(), head, 42), "raw")
    columns = "campaign_id, billable, is_bot, spend_micros, topic, partition, offset, version"
    got = store.rows(f"SELECT {columns} FROM {schema.EVENTS} ORDER BY offset")
    version = schema.VERSION_BASE - schema.epoch_millis(event.to_dict()["received_at"])
    assert got == [
        {"campaign_id": "c", "billable": 0, "is_bot": 1, "spend_micros": 3100,
         "topic": "tracker-billing", "partition": 2, "offset": o, "version": version}
        for o in (41, 42)
    ]  # fmt: skip
    assert schema.spliced(b"[]", head, 1) is None and schema.spliced(b"{}", head, 1) is None


@pytest.fixture
def store(tmp_path):
    store = open_store(f"chdb:{tmp_path / 'db'}")
    store.create_tables()
    store.create_tables()  # idempotent
    yield store
    store.close()


def load(store, events, offset=0):
    rows = [schema.row(e.to_json(), "t", 0, offset + i) for i, e in enumerate(events)]
    store.insert(schema.EVENTS, rows, f"t:0:{offset}-{offset + len(rows)}")


def ev(kind, campaign, ident, at=NOW, metrics=None, **dims):
    return Event(
        id=ident,
        type=kind,
        path=kind,
        received_at=at,
        dimensions={"campaign_id": campaign, **dims},
        metrics=metrics or {},
    )


def test_the_report_counts_distinct_ids_and_spends_as_the_banker(store):
    first = [
        ev("impression", "a", "i1"),
        ev("impression", "a", "i2"),
        ev("impression", "a", "i3", is_bot=True),
        ev("click", "a", "c1"),
        ev("click", "a", "c2", is_bot=True),
        ev("video", "a", "v1", vast_event="start"),
        ev("video", "a", "v2", vast_event="start"),
        ev("video", "a", "v3", vast_event="complete"),
        ev("win", "a", "w1"),
        ev("loss", "a", "l1"),
        ev("loss", "a", "l2"),
        ev("conversion", "a", "k1", metrics={"value_micros": 1_500_000}),
        ev("billing", "a", "b1", metrics={"spend_micros": 3100}, currency="USD"),
        ev("billing", "a", "b2", metrics={"spend_micros": 900}, billable=False),  # AUDIT
        ev("billing", "a", "b3", metrics={"spend_micros": 700}, is_bot=True),
        ev("billing", "a", "b4", NOW + 5, {"spend_micros": 500}, currency="EUR"),
        ev("billing", "b", "b5", NOW + 1, {"spend_micros": 2000}, currency="EUR"),
        ev("billing", "c", "b6", NOW, {"spend_micros": 100}),  # no currency: the default, USD
        ev("billing", "c", "b7", NOW + 1, {"spend_micros": 10}, currency="USD"),
    ]
    load(store, first)
    # Exchange duplicates, a replay, a claim of b1 under campaign b: each id once.
    again = [
        ev("impression", "a", "i1", NOW + 60),
        ev("billing", "b", "b1", NOW + 3, {"spend_micros": 3100}),
    ]
    load(store, [*first, *again], offset=100)
    rows = query.run(store, query.make_request("2026-12-06", "2026-12-06"))
    assert rows == [
        {"campaign": "a", "impressions": 2, "clicks": 1, "bot_impressions": 1, "ctr": 0.5,
         "conversions": 1, "conversion_value_micros": 1_500_000, "video_starts": 2,
         "video_completes": 1, "completion_rate": 0.5, "wins": 1, "losses": 2,
         "win_rate": 1 / 3, "spend_micros": 3100, "ecpm_micros": 1_550_000},
        {"campaign": "b", "impressions": 0, "clicks": 0, "bot_impressions": 0, "ctr": None,
         "conversions": 0, "conversion_value_micros": 0, "video_starts": 0,
         "video_completes": 0, "completion_rate": None, "wins": 0, "losses": 0,
         "win_rate": None, "spend_micros": 2000, "ecpm_micros": None},
        {"campaign": "c", "impressions": 0, "clicks": 0, "bot_impressions": 0, "ctr": None,
         "conversions": 0, "conversion_value_micros": 0, "video_starts": 0,
         "video_completes": 0, "completion_rate": None, "wins": 0, "losses": 0,
         "win_rate": None, "spend_micros": 110, "ecpm_micros": None},
    ]  # fmt: skip


def test_an_id_counts_on_the_day_it_was_first_received(store):
    day = 86_400
    load(store, [ev("impression", "a", "i1", NOW - day), ev("impression", "a", "i2", NOW)])
    load(store, [ev("impression", "a", "i1", NOW)], offset=10)  # a late duplicate
    rows = query.run(store, query.make_request("2026-12-05", "2026-12-06", "day,campaign"))
    assert [(r["day"], r["impressions"]) for r in rows] == [("2026-12-05", 1), ("2026-12-06", 1)]
    hours = query.run(store, query.make_request("2026-12-06", "2026-12-06", "hour", "a"))
    assert [(r["hour"], r["impressions"]) for r in hours] == [("2026-12-06T12:00:00Z", 1)]
    assert query.run(store, query.make_request("2026-12-06", None, campaign="zzz")) == []


def test_the_report_cuts_by_country_and_device_of_the_first_copy(store):
    load(
        store,
        [
            ev("impression", "a", "i1", country="DE", device_type="mobile"),
            ev("impression", "a", "i2", country="DE", device_type="desktop"),
            ev("impression", "a", "i3", country="FR", device_type="mobile"),
            ev("impression", "a", "i4"),  # no enrichment: the empty string
        ],
    )
    # A later copy of i1 that says otherwise counts under its first copy's values.
    load(store, [ev("impression", "a", "i1", NOW + 60, country="US")], offset=10)
    rows = query.run(store, query.make_request("2026-12-06", "2026-12-06", "country,device_type"))
    assert [(r["country"], r["device_type"], r["impressions"]) for r in rows] == [
        ("", "", 1),
        ("DE", "desktop", 1),
        ("DE", "mobile", 1),
        ("FR", "mobile", 1),
    ]


def test_options_are_checked_with_a_reason():
    now = datetime(2026, 12, 6, 15, tzinfo=UTC)
    request = query.make_request(now=now)
    assert (request.start, request.end) == (
        datetime(2026, 11, 30, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
    )
    assert query.make_request("2026-12-01T10:30", "2026-12-01T11:00").by == ("campaign",)
    with pytest.raises(query.ReportError, match="--by takes a comma-separated list"):
        query.make_request(by="campaign,planet")
    with pytest.raises(query.ReportError, match="must be after --from"):
        query.make_request("2026-12-02", "2026-12-01")
    with pytest.raises(query.ReportError, match="is not a date"):
        query.make_request("yesterday")


def test_formats(store, tmp_path, capsys):
    load(store, [ev("impression", "a,b", "i1"), ev("click", "a,b", "c1")])
    rows = query.run(store, query.make_request("2026-12-06", "2026-12-06"))
    assert json.loads(cli.render(rows, ("campaign",), "json")) == rows
    csv_text = cli.render(rows, ("campaign",), "csv")
    assert csv_text.splitlines()[0] == "campaign," + ",".join(query.METRICS)
    assert csv_text.splitlines()[1].startswith('"a,b",1,1,0,1.0,')
    table = cli.render(rows, ("campaign",), "table").splitlines()
    assert table[0].split() == ["campaign", *query.METRICS]
    assert table[1].split()[:4] == ["a,b", "1", "1", "0"]
    html = page.render(store, query.make_request("2026-12-06", "2026-12-06"))
    assert "<svg" in html and "Impressions per hour" in html and "<td>a,b</td>" in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch


def test_setup_never_fails_when_the_database_cannot_be_used(tmp_path):
    assert cli.setup_lines("mysql://nowhere") == [
        "skipped: TRACKER_REPORTING_URL must be chdb:PATH or http(s)://..., not 'mysql://nowhere'"
    ]
    (line,) = cli.setup_lines("http://127.0.0.1:9/db")
    assert line.startswith("skipped: cannot open a session with 127.0.0.1:9")


def test_report_command_refuses_bad_options(capsys):
    from tracker.process.cli import main

    assert main(["report", "--by", "planet"]) == 2
    assert "--by takes a comma-separated list of campaign" in capsys.readouterr().err


def test_the_loader_reads_the_event_topics_of_the_shipped_config():
    config = load_file(ROOT / "config" / "tracker.yaml", {})
    bootstrap, topics = event_topics(config)
    assert bootstrap == "127.0.0.1:9092"
    assert topics == (
        "tracker-events",
        "tracker-impressions",
        "tracker-clicks",
        "tracker-conversions",
        "tracker-video",
        "tracker-auctions",
        "tracker-billing",
    )  # not tracker-rejected (the rejected stream) nor tracker-budget (the banker's)
