"""Rejections are counted every time and logged by sampling."""

from __future__ import annotations

import logging

import falcon.testing

from tests import ROOT
from tests.apps import build_app
from tracker.config import load_file
from tracker.http.errors import SampledLog
from tracker.intake.refusals import Rejected


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rejection_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("rejected ")]


def test_a_flood_is_logged_a_few_lines_a_second_and_the_rest_is_summed(caplog):
    caplog.set_level(logging.INFO, logger="tracker.http.errors")
    clock = Clock()
    sampled = SampledLog(per_second=3, clock=clock)
    bad = Rejected(400, "invalid_fields", "One or more fields are missing or invalid.")
    for _ in range(50):
        sampled("GET", "impression", bad)
    records = rejection_records(caplog)
    assert len(records) == 3
    assert [r.suppressed for r in records] == [0, 0, 0]
    clock.now += 1.0
    sampled("GET", "win", bad)
    last = rejection_records(caplog)[-1]
    assert last.getMessage() == (
        "rejected GET win: invalid_fields: One or more fields are missing or invalid."
    )
    assert (last.path, last.reason, last.suppressed) == ("win", "invalid_fields", 47)


def test_nothing_is_formatted_when_info_is_off(caplog):
    caplog.set_level(logging.WARNING, logger="tracker.http.errors")

    class Unformattable(Rejected):
        def summary(self) -> str:
            raise AssertionError("formatted although INFO is off")

    SampledLog()("GET", "impression", Unformattable(400, "invalid_fields", "x"))
    assert rejection_records(caplog) == []


def test_the_app_logs_a_rejection_with_its_reason(caplog):
    caplog.set_level(logging.INFO, logger="tracker.http.errors")
    tracker, _ = build_app(load_file(ROOT / "config" / "tracker.yaml"))
    client = falcon.testing.TestClient(tracker.wsgi)
    resp = client.simulate_get("/win", params={"aid": "a-1", "price": "${AUCTION_PRICE}"})
    assert resp.status_code == 400
    (record,) = rejection_records(caplog)
    assert (record.path, record.reason) == ("win", "unsubstituted_macro")
