"""The ledger counts ids: once across campaigns, tokens bound to auctions, currency from config."""

from __future__ import annotations

import json
import uuid

import pytest

from collectors.banker.collector import BankerCollector
from collectors.banker.entries import Entries
from collectors.banker.ledger import Entry
from collectors.banker.options import BankerOptions
from tests.test_banker import banker, notice, report, today
from tracker.event import Event
from tracker.plugins import Refused

pytestmark = pytest.mark.redis

FLAGS_NONE = {"other_campaign_events": 0, "token_reused_events": 0, "currency_refused_events": 0}


def test_one_id_is_spent_once_across_campaigns_and_flagged_in_the_other(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path)
    collector.collect(notice("c1", spend=100, event_id="e1"))
    assert report(collector, "c1")["spend_micros"] == 100
    for _ in range(2):  # a retry of the second claim is flagged once
        collector.collect(notice("c2", spend=100, event_id="e1", line_item="li9"))
        c2 = report(collector, "c2")
    assert (c2["spend_micros"], c2["events"]) == (0, 0)
    assert c2["flagged"] == {**FLAGS_NONE, "other_campaign_events": 1}
    assert report(collector, "c1")["flagged"] == FLAGS_NONE
    collector.close(1.0)


def test_a_flush_that_died_between_claim_and_spend_is_finished_once(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path)
    ledger = collector._ledger()
    entry = Entry("e2", "c1", "", "USD", 70, False, today())
    from collectors.banker.claims import claim

    assert claim(ledger.client, ledger.keys, [("c1", [entry])], 60, 60) == [[0]]
    for _ in range(2):
        ledger.apply("c1", [entry])
    assert (ledger.report("c1")["spend_micros"], ledger.report("c1")["events"]) == (70, 1)
    collector.close(1.0)


def test_an_id_spent_before_the_upgrade_is_not_spent_again(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path)
    ledger = collector._ledger()
    # What the previous release left: the per-campaign id key, no claim.
    ledger.client.set(f"{ledger.keys.base('c1')}:id:old", "1")
    assert ledger.apply("c1", [Entry("old", "c1", "", "USD", 5, False, today())]).duplicates == 1
    collector.close(1.0)


def test_an_old_spool_record_still_loads():
    old = json.loads(json.dumps(["e", "c1", "", "USD", 5, False, "2026-12-06"]))
    assert Entry(*old) == Entry("e", "c1", "", "USD", 5, False, "2026-12-06", "", "")


def test_a_token_is_spent_once_under_its_auction(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path)
    collector.collect(notice(spend=10, auction_id="a1", price_token="t1"))
    collector.collect(notice(spend=10, auction_id="a1", price_token="t1", event_id="other-id"))
    collector.collect(notice(spend=10, auction_id="a2", price_token="t1"))
    c1 = report(collector, "c1")
    assert (c1["spend_micros"], c1["events"]) == (20, 2)  # same auction: a new event id is spent
    assert c1["flagged"] == {**FLAGS_NONE, "token_reused_events": 1}
    collector.close(1.0)


def test_currency_comes_from_config_and_set_budget_never_from_a_notice(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path, default_currency="EUR")
    collector.collect(notice(spend=20, currency="USD"))  # first, and odd: not learned
    collector.collect(notice(spend=10, currency="EUR"))
    c1 = report(collector, "c1")
    assert (c1["spend_micros"], c1["currency"]) == (10, "EUR")
    assert c1["flagged"] == {**FLAGS_NONE, "currency_refused_events": 1}
    ledger = collector._ledger()
    assert ledger.set_budget("c2", None, None, today(), "USD")["currency"] == "USD"
    collector.collect(notice("c2", spend=30, currency="USD"))
    assert report(collector, "c2")["spend_micros"] == 30
    with pytest.raises(ValueError, match="has spend in EUR"):
        ledger.set_budget("c1", None, None, today(), "USD")
    collector.close(1.0)


class NoRedis:
    """A client that fails the test if the request thread talks to Redis."""

    def __getattr__(self, name):
        raise AssertionError(f"admit() called redis: {name}")


def test_admit_refuses_what_the_ledger_would_not_spend_without_a_round_trip(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path)
    ledger = collector._ledger()
    ledger.set_budget("gbp", None, None, today(), "GBP")
    collector.tidy()  # what the outbox's thread does once a second
    real, ledger.client = ledger.client, NoRedis()
    with pytest.raises(Refused) as refused:
        collector.admit(notice(currency="EUR"), 5.0)  # a campaign of its own: the default
    assert (refused.value.status, refused.value.reason) == (400, "currency_mismatch")
    collector.admit(notice("gbp", currency="GBP"), 5.0)  # the campaign's own
    for wait in (5.0, None):  # durable or fast path alike
        with pytest.raises(Refused):
            collector.admit(notice("gbp", currency="USD"), wait)
    first = notice(auction_id="a1", price_token="tok")
    collector.admit(first, 5.0)
    collector.admit(first, 5.0)  # a retry of the same notice
    collector.admit(notice(auction_id="a1", price_token="tok", event_id="loss-or-win"), 5.0)
    with pytest.raises(Refused) as refused:
        collector.admit(notice(auction_id="a2", price_token="tok"), 5.0)
    assert (refused.value.status, refused.value.reason) == (409, "price_token_reused")
    collector.admit(notice(billable=False, currency="XXX"), 5.0)  # AUDIT: nothing to check
    ledger.client = real
    collector.close(1.0)


def test_a_currency_set_later_reaches_admission_on_the_next_refresh(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path)
    with pytest.raises(Refused):
        collector.admit(notice("later", currency="JPY"), None)
    collector._ledger().set_budget("later", None, None, today(), "JPY")
    collector.tidy()
    collector.admit(notice("later", currency="JPY"), None)
    with pytest.raises(Refused):
        collector.admit(notice("later", currency="USD"), None)
    collector.close(1.0)


def test_without_redis_since_start_no_notice_is_refused_on_a_guess(tmp_path):
    options = {"redis_url": "redis://127.0.0.1:1", "socket_timeout": 0.2}
    collector = BankerCollector(
        "banker", BankerOptions().load({**options, "spool": {"directory": str(tmp_path / "spool")}})
    )
    collector.open()
    collector.admit(notice("gbp", currency="GBP"), 5.0)  # may be its own currency
    collector.close(0.5)


def test_a_token_another_worker_took_is_flagged_in_the_ledger_not_spent(redis_node, tmp_path):
    one = banker(redis_node, tmp_path / "one")
    other = banker(redis_node, tmp_path / "other", key_prefix=one.options.key_prefix)
    one.admit(notice(auction_id="a1", price_token="tok"), 5.0)
    one.collect(notice(spend=10, auction_id="a1", price_token="tok"))
    assert report(one, "c1")["spend_micros"] == 10
    replay = notice(spend=10, auction_id="a2", price_token="tok")
    other.admit(replay, 5.0)  # this worker never saw the token: the ledger decides
    other.collect(replay)
    c1 = report(other, "c1")
    assert (c1["spend_micros"], c1["flagged"]["token_reused_events"]) == (10, 1)
    one.close(1.0)
    other.close(1.0)


def test_a_token_flagged_in_the_ledger_is_offered_to_the_rejected_stream_once(redis_node, tmp_path):
    one = banker(redis_node, tmp_path / "one")
    other = banker(redis_node, tmp_path / "other", key_prefix=one.options.key_prefix)
    offered = []
    other.late_refusal = lambda path, refused, fields: offered.append((path, refused, fields))
    one.collect(notice(spend=10, auction_id="a1", price_token="tok"))
    assert report(one, "c1")["spend_micros"] == 10
    replay = notice(spend=10, auction_id="a2", price_token="tok", event_id="replayed")
    for _ in range(2):  # the exchange retries the replay: flagged and offered once
        other.collect(replay)
        assert report(other, "c1")["flagged"]["token_reused_events"] == 1
    ((path, refused, fields),) = offered
    assert (path, refused.status, refused.reason) == ("_banker", 409, "price_token_reused")
    assert fields == {
        "event_id": "replayed",
        "campaign_id": "c1",
        "auction_id": "a2",
        "price_token": "tok",
    }
    one.close(1.0)
    other.close(1.0)


ABSURD = [10**400, -(10**400), float("inf"), float("nan"), 10**15, -1]


@pytest.mark.parametrize("ts", ABSURD, ids=["huge", "-huge", "inf", "nan", "1e15", "-1"])
def test_an_absurd_auction_time_never_raises(ts, tmp_path):
    options = {"redis_url": "redis://x", "spool": {"directory": str(tmp_path)}}
    entries = Entries("banker", BankerOptions().load(options))
    entries.open()
    event = Event(
        type="billing",
        path="billing",
        dimensions={"campaign_id": "c", "billable": True, "auction_ts": ts},
        metrics={"spend_micros": 1},
    )
    assert entries.entry(event).late is False


def test_a_campaign_spent_before_the_upgrade_keeps_its_ledgers_currency(redis_node, tmp_path):
    prefix = "t" + uuid.uuid4().hex[:8]
    client = redis_node.client()
    # What the previous release left: a ledger whose currency came from a notice.
    client.hset(f"{prefix}:{{old}}:total", mapping={"currency": "EUR"})
    client.sadd(f"{prefix}:campaigns", "old")
    collector = banker(redis_node, tmp_path, key_prefix=prefix)  # default_currency USD
    collector.admit(notice("old", currency="EUR"), 5.0)  # not refused after the upgrade
    with pytest.raises(Refused):
        collector.admit(notice("old", currency="USD"), 5.0)
    collector.collect(notice("old", spend=40, currency="EUR"))
    assert report(collector, "old")["spend_micros"] == 40
    collector.close(1.0)
