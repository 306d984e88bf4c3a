"""The banker collector against a real redis-server (started by scripts/redis/redis.sh)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from collectors.banker import BankerCollector
from collectors.banker.options import BankerOptions
from tracker.config import ConfigError, load_text
from tracker.event import Event
from tracker.process import cli

pytestmark = pytest.mark.redis


def today() -> str:
    """The UTC day the banker books a notice sent now under.

    Read when a test needs it, never once at import: a suite that runs across
    midnight UTC would otherwise look for the spend under the day before.
    """
    return time.strftime("%Y-%m-%d", time.gmtime())


def banker(redis_node, tmp_path, **overrides) -> BankerCollector:
    """A banker on the test Redis under a fresh key prefix, opened."""
    options = {
        "redis_url": redis_node.url,
        "key_prefix": "t" + uuid.uuid4().hex[:8],
        "flush_interval": 0.02,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
        "socket_timeout": 0.5,
        "spool": {"directory": str(tmp_path / "spool")},
        **overrides,
    }
    collector = BankerCollector("banker", BankerOptions().load(options))
    collector.open()
    return collector


def notice(campaign="c1", spend=1500, line_item="li1", event_id=None, **dims) -> Event:
    """A billing event as the /bill path builds it."""
    dimensions = {"campaign_id": campaign, "currency": "USD", "billable": True, **dims}
    if line_item:
        dimensions["line_item_id"] = line_item
    return Event(
        type="billing",
        path="billing",
        id=event_id or str(uuid.uuid4()),
        dimensions=dimensions,
        metrics={"spend_micros": spend, "billed_impressions": 1},
    )


def report(collector: BankerCollector, campaign: str, day: str | None = None) -> dict:
    assert collector.flush(15.0) == 0
    return collector._ledger().report(campaign, day)


def test_spend_is_summed_per_campaign_and_line_item_once_per_notice(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path)
    first = notice(spend=1500, event_id="a1")
    for event in (first, notice(spend=2500, line_item="li2"), notice("c2", spend=7), first):
        collector.collect(event)
    collector.collect(notice(spend=999, billable=False))  # AUDIT render
    collector.collect(notice(spend=999, is_bot=True))
    c1 = report(collector, "c1")
    assert (c1["spend_micros"], c1["events"], c1["currency"]) == (4000, 2, "USD")
    assert c1["line_items"] == {
        "li1": {"spend_micros": 1500, "events": 1, "late_events": 0, "late_micros": 0},
        "li2": {"spend_micros": 2500, "events": 1, "late_events": 0, "late_micros": 0},
    }
    assert report(collector, "c1", today())["spend_micros"] == 4000
    assert report(collector, "c2")["spend_micros"] == 7
    collector.collect(first)  # a duplicate in a later flush is refused by Redis
    assert report(collector, "c1")["events"] == 2
    assert collector._ledger().campaigns() == ["c1", "c2"]
    assert collector.close(2.0) == 0


def test_late_notices_are_spent_and_flagged(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path, late_after=60)
    now = time.time()
    collector.collect(notice(spend=10, auction_ts=int(now - 3600)))
    collector.collect(notice(spend=20, auction_ts=int((now - 5) * 1000)))  # milliseconds
    c1 = report(collector, "c1")
    assert (c1["spend_micros"], c1["late_events"], c1["late_micros"]) == (30, 1, 10)
    collector.close(1.0)


def test_other_currency_is_refused_not_added(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path)
    collector.collect(notice(spend=10))
    collector.flush(5.0)
    collector.collect(notice(spend=20, currency="EUR"))
    assert report(collector, "c1")["spend_micros"] == 10
    collector.close(1.0)


def test_crossing_a_cap_marks_the_campaign_exhausted_within_one_flush(redis_node, tmp_path):
    collector = banker(redis_node, tmp_path, flush_interval=0.05)
    ledger = collector._ledger()
    ledger.set_budget("c1", daily=None, total=5000, day=today())
    client = ledger.client
    exhausted = ledger.keys.exhausted
    collector.collect(notice(spend=4000))
    report(collector, "c1")
    assert not client.sismember(exhausted, "c1")
    collector.collect(notice(spend=3000))
    sent = time.monotonic()
    while not client.sismember(exhausted, "c1"):
        assert time.monotonic() - sent < 0.05 + 0.5, "not marked within a flush"
        time.sleep(0.005)
    c1 = report(collector, "c1")
    assert (c1["spend_micros"], c1["overspend_micros"], c1["exhausted"]) == (7000, 2000, True)
    # Raising the cap re-opens the campaign; lowering a daily cap marks the day.
    after = ledger.set_budget("c1", daily=6000, total=10_000, day=today())
    assert not client.sismember(exhausted, "c1")
    assert after["exhausted"] and after["overspend_micros"] == 1000
    assert client.sismember(ledger.keys.exhausted_day(today()), "c1")
    collector.close(1.0)


def test_redis_down_keeps_spend_pending_then_spools_past_the_bound(live_redis, tmp_path):
    collector = banker(live_redis, tmp_path, max_pending=5)
    collector.collect(notice(event_id="before"))
    report(collector, "c1")
    live_redis.down()
    events = [notice(spend=100 + i) for i in range(12)]
    for event in events:
        collector.collect(event)
    deadline = time.monotonic() + 10
    while collector.health().detail.startswith("redis up") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert collector.pending() == 5
    assert collector.outbox.spool.size() > 0
    assert collector.health().ok
    assert collector.health().detail.startswith("redis down (")
    live_redis.up()
    c1 = report(collector, "c1")
    deadline = time.monotonic() + 20
    while c1["events"] < 13 and time.monotonic() < deadline:
        time.sleep(0.05)
        c1 = report(collector, "c1")
    assert (c1["events"], c1["spend_micros"]) == (
        13,
        1500 + sum(e.metrics["spend_micros"] for e in events),
    )
    deadline = time.monotonic() + 20
    while not collector.health().detail.startswith("redis up") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert collector.health().detail.startswith("redis up; 0 of 5 notices pending")
    collector.close(1.0)


def test_spool_left_at_shutdown_is_replayed_exactly_once(live_redis, tmp_path):
    prefix = "t" + uuid.uuid4().hex[:8]
    first = banker(live_redis, tmp_path, key_prefix=prefix)
    live_redis.down()
    events = [notice(spend=10 * (i + 1)) for i in range(20)]
    for event in events:
        first.collect(event)
    assert first.close(1.0) == 0
    assert list((tmp_path / "spool").glob("*.seg"))
    live_redis.up()
    # Two workers replay the same directory, and the notices come in again too.
    second = banker(live_redis, tmp_path, key_prefix=prefix)
    third = banker(live_redis, tmp_path, key_prefix=prefix)
    for event in events[:5]:
        third.collect(event)
    deadline = time.monotonic() + 20
    while list((tmp_path / "spool").glob("*.seg")) and time.monotonic() < deadline:
        time.sleep(0.05)
    c1 = report(second, "c1")
    assert (c1["events"], c1["spend_micros"]) == (20, sum(10 * (i + 1) for i in range(20)))
    second.close(1.0)
    third.close(1.0)


def test_spend_command_prints_the_ledger(redis_node, tmp_path, capsys):
    collector = banker(redis_node, tmp_path)
    for event in (notice(spend=1200), notice("c9", spend=5, line_item=None)):
        collector.collect(event)
    collector.flush(5.0)
    config = tmp_path / "tracker.yaml"
    config.write_text(
        "collectors:\n"
        "  bank:\n"
        "    type: banker\n"
        f"    redis_url: {redis_node.url}\n"
        f"    key_prefix: {collector.options.key_prefix}\n"
        f"    spool: {{directory: {tmp_path / 'spool2'}}}\n"
        "paths:\n"
        "  bill: {route: /bill, event_type: billing, collectors: [bank]}\n"
    )
    capsys.readouterr()
    assert cli.main(["banker", "spend", "--config", str(config)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {c: (r["spend_micros"], r["events"]) for c, r in printed.items()} == {
        "c1": (1200, 1),
        "c9": (5, 1),
    }
    assert cli.main(["banker", "spend", "--config", str(config), "--campaign", "c9"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["c9"]
    argv = ["banker", "set-budget", "--config", str(config), "--campaign", "c1"]
    assert cli.main([*argv, "--total-micros", "1000"]) == 0
    assert json.loads(capsys.readouterr().out)["c1"]["budget"] == {"total_micros": 1000}
    assert cli.main(["banker", "spend", "--config", str(config), "--day", today()]) == 0
    assert json.loads(capsys.readouterr().out)["c1"]["spend_micros"] == 1200
    with pytest.raises(SystemExit):
        cli.main(["banker", "spend", "--config", str(config), "--day", "2026-13-01"])
    collector.close(1.0)


def test_banker_block_is_validated_with_the_dotted_path():
    text = (
        "collectors:\n"
        "  bank:\n"
        "    type: banker\n"
        "    redis_url: http://x\n"
        "    flush_interval: 0\n"
        "    spool: {directory: var/x}\n"
        "paths:\n"
        "  bill: {route: /bill, event_type: billing, collectors: [bank]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_text(text, {})
    assert caught.value.errors == [
        "collectors.bank.redis_url: Must be a redis://, rediss:// or unix:// URL. "
        "(found: 'http://x')",
        "collectors.bank.flush_interval: Must be greater than or equal to 0.005 and less than "
        "or equal to 60. (found: 0)",
    ]


def test_replaying_the_log_files_spends_only_what_the_ledger_lacks(redis_node, tmp_path):
    from tracker.process.replay import replay

    prefix = "t" + uuid.uuid4().hex[:8]
    config = load_text(
        "collectors:\n"
        "  bank:\n"
        "    type: banker\n"
        f"    redis_url: {redis_node.url}\n"
        f"    key_prefix: {prefix}\n"
        f"    spool: {{directory: {tmp_path / 'spool'}}}\n"
        "paths:\n"
        "  billing: {route: /bill, event_type: billing, collectors: [bank]}\n",
        {},
    )
    events = [notice(spend=100 * (i + 1)) for i in range(30)]
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"\n".join(e.to_json() for e in events) + b"\n")
    collector = banker(redis_node, tmp_path, key_prefix=prefix)
    for event in events[:10]:
        collector.collect(event)
    assert report(collector, "c1")["events"] == 10
    for _ in range(2):
        assert replay(config, [log], ("bank",), timeout=10.0).sent == {"bank": 30}
    c1 = report(collector, "c1")
    assert (c1["events"], c1["spend_micros"]) == (30, sum(100 * (i + 1) for i in range(30)))
    collector.close(1.0)
