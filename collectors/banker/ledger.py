"""The spend ledger in Redis: key layout, the exactly-once Lua step, reads and budgets.

Every key of a campaign carries the hash tag ``{<campaign_id>}``, so one script
call touches one slot and works unchanged on Redis Cluster. The layout, units
and the way a bidder reads it are documented in ``docs/banker.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .script import APPLY


class Entry(NamedTuple):
    """One billable notice, reduced to what the ledger needs (spooled as a JSON list)."""

    event_id: str
    campaign: str
    line_item: str  # "" when the notice names none
    currency: str
    spend: int  # micro-units of ``currency``
    late: bool
    day: str  # UTC day the notice was received, YYYY-MM-DD


#: Fields of every ledger hash (total, per day, per line item, per line item and day).
COUNTERS = ("spend_micros", "events", "late_events", "late_micros")


@dataclass(frozen=True)
class Exhausted:
    """A cap a campaign reached in this step (announced once, by whoever crossed it)."""

    campaign: str
    cap: str  # "total" or "daily"
    day: str | None
    cap_micros: int
    spend_micros: int
    currency: str

    def notice(self) -> dict[str, Any]:
        """The JSON document sent to the budget topic."""
        return {
            "type": "budget_exhausted",
            "campaign_id": self.campaign,
            "cap": self.cap,
            "day": self.day,
            "cap_micros": self.cap_micros,
            "spend_micros": self.spend_micros,
            "overspend_micros": max(0, self.spend_micros - self.cap_micros),
            "currency": self.currency,
            "at": round(time.time(), 3),
        }


@dataclass
class Applied:
    """What one script call did."""

    applied: int = 0
    duplicates: int = 0
    refused_currency: int = 0
    overspend_total: int = 0
    overspend_daily: int = 0
    exhausted: list[Exhausted] = field(default_factory=list)


class Keys:
    """Key names under one prefix; ``{campaign}`` is the hash tag."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.campaigns = f"{prefix}:campaigns"
        self.exhausted = f"{prefix}:exhausted"

    def base(self, campaign: str) -> str:
        """Start of every key of ``campaign``."""
        return f"{self.prefix}:{{{campaign}}}"

    def exhausted_day(self, day: str) -> str:
        """Campaigns whose daily cap was reached on ``day``."""
        return f"{self.exhausted}:{day}"


class Ledger:
    """Apply entries to, and read, the ledger of one Redis or Redis Cluster."""

    def __init__(self, client: Any, prefix: str, id_ttl: int = 259_200, day_ttl: int = 7776000):
        self.client = client
        self.keys = Keys(prefix)
        self.id_ttl = id_ttl
        self.day_ttl = day_ttl
        self._sha: str | None = None

    def apply(self, campaign: str, entries: list[Entry]) -> Applied:
        """Apply one campaign's entries in one atomic step; duplicates are refused.

        Raises:
            redis.RedisError: The step failed; none of it was applied.
        """
        (result,) = self.apply_many([(campaign, entries)])
        if isinstance(result, Exception):
            raise result
        return result

    def apply_many(
        self, batches: list[tuple[str, list[Entry]]], register: tuple[str, ...] = ()
    ) -> list[Applied | Exception]:
        """Apply several campaigns' batches in one pipelined round trip.

        Each batch is its own atomic step (a cluster pipeline sends each node
        its share), so one may fail while others are applied.

        Args:
            batches: ``(campaign, entries)`` pairs, one script call each.
            register: Campaigns to add to the campaigns set first.

        Returns:
            Per batch, what it did, or the error that left it unapplied.

        Raises:
            redis.RedisError: Nothing could be sent (connection refused...).
        """
        import redis

        replies = self._send(batches, register)
        if any(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
            # Redis restarted (or failed over) without its script cache: load the
            # script again and resend; a step either ran or raised NOSCRIPT, never half.
            self._sha = None
            again = [i for i, r in enumerate(replies) if isinstance(r, Exception)]
            for i, reply in zip(again, self._send([batches[i] for i in again]), strict=True):
                replies[i] = reply
        results: list[Applied | Exception] = []
        for (campaign, _), reply in zip(batches, replies, strict=True):
            results.append(reply if isinstance(reply, Exception) else self._result(campaign, reply))
        return results

    def _send(self, batches: list[tuple[str, list[Entry]]], register: tuple[str, ...] = ()):
        if self._sha is None:
            self._sha = self.client.script_load(APPLY)
        pipe = self.client.pipeline(transaction=False)
        if register:
            pipe.sadd(self.keys.campaigns, *register)
        for campaign, entries in batches:
            keys, args = self._call(campaign, entries)
            # execute_command: redis-py blocks pipe.evalsha() in cluster pipelines, but
            # routes a raw EVALSHA by its keys' slot like any other command.
            pipe.execute_command("EVALSHA", self._sha, len(keys), *keys, *args)
        return pipe.execute(raise_on_error=False)[1 if register else 0 :]

    def _call(self, campaign: str, entries: list[Entry]) -> tuple[list[str], list[Any]]:
        base = self.keys.base(campaign)
        keys = [f"{base}:total", f"{base}:budget", f"{base}:exhausted", f"{base}:line_items"]
        index: dict[str, int] = {}

        def at(key: str) -> int:
            if key not in index:
                keys.append(key)
                index[key] = len(keys)
            return index[key]

        days: dict[int, str] = {}
        items: list[Any] = []
        line_items = sorted({e.line_item for e in entries if e.line_item})
        for e in entries:
            day_i = at(f"{base}:day:{e.day}")
            days[day_i] = e.day
            li_i = at(f"{base}:li:{e.line_item}") if e.line_item else 0
            liday_i = at(f"{base}:li:{e.line_item}:day:{e.day}") if e.line_item else 0
            items += (at(f"{base}:id:{e.event_id}"), day_i, li_i, liday_i)
            items += (e.spend, int(e.late), e.currency)
        args: list[Any] = [self.id_ttl, self.day_ttl, int(time.time()), len(days)]
        for key_i, day in days.items():
            args += (key_i, day)
        args += (len(line_items), *line_items, len(entries), *items)
        return keys, args

    @staticmethod
    def _result(campaign: str, reply: list) -> Applied:
        text = [r.decode() if isinstance(r, bytes) else r for r in reply]
        result = Applied(int(text[0]), int(text[1]), int(text[2]), int(text[3]), int(text[4]))
        currency = text[5]
        for i in range(6, len(text), 3):
            name, cap, spend = text[i], int(text[i + 1]), int(text[i + 2])
            day = name[4:] if name.startswith("day:") else None
            kind = "daily" if day else "total"
            result.exhausted.append(Exhausted(campaign, kind, day, cap, spend, currency))
        return result

    def register(self, campaign: str) -> None:
        """List ``campaign`` in the campaigns set (read by reports)."""
        self.client.sadd(self.keys.campaigns, campaign)

    def mark(self, exhausted: Exhausted) -> None:
        """Add an exhausted campaign to the documented sets bidders read."""
        if exhausted.cap == "total":
            self.client.sadd(self.keys.exhausted, exhausted.campaign)
        else:
            key = self.keys.exhausted_day(exhausted.day)
            self.client.sadd(key, exhausted.campaign)
            self.client.expire(key, 3 * 86_400)

    # --- reads ------------------------------------------------------------------------

    def campaigns(self) -> list[str]:
        """Every campaign that ever had spend applied, sorted."""
        return sorted(_text(c) for c in self.client.smembers(self.keys.campaigns))

    def report(self, campaign: str, day: str | None = None) -> dict[str, Any]:
        """Spend of ``campaign`` in total, or on ``day``, with its line items and budget."""
        base = self.keys.base(campaign)
        suffix = f":day:{day}" if day else ""
        ledger = _counters(self.client.hgetall(f"{base}:total" if not day else f"{base}{suffix}"))
        total = self.client.hgetall(f"{base}:total")
        budget = {_text(k): int(v) for k, v in self.client.hgetall(f"{base}:budget").items()}
        flags = {_text(k) for k in self.client.hkeys(f"{base}:exhausted")}
        line_items = {}
        for li in sorted(_text(x) for x in self.client.smembers(f"{base}:line_items")):
            counters = _counters(self.client.hgetall(f"{base}:li:{li}{suffix}"))
            if counters["events"]:
                line_items[li] = counters
        cap = budget.get("daily_micros" if day else "total_micros")
        return {
            **ledger,
            "currency": _text(total.get(b"currency", b"")) or None,
            "budget": budget,
            "overspend_micros": max(0, ledger["spend_micros"] - cap) if cap is not None else 0,
            "exhausted": (f"day:{day}" if day else "total") in flags,
            "line_items": line_items,
        }

    # --- budgets ----------------------------------------------------------------------

    def set_budget(
        self, campaign: str, daily: int | None, total: int | None, day: str
    ) -> dict[str, Any]:
        """Set caps (``None`` leaves one as is, a negative value removes it).

        The exhausted flags and sets follow the new caps at once: raising a cap
        above the spend re-opens the campaign, lowering it below marks it.

        Returns:
            The campaign's report for ``day`` after the change.
        """
        base = self.keys.base(campaign)
        for name, value in (("daily_micros", daily), ("total_micros", total)):
            if value is None:
                continue
            if value < 0:
                self.client.hdel(f"{base}:budget", name)
            else:
                self.client.hset(f"{base}:budget", name, value)
        self.register(campaign)
        budget = {_text(k): int(v) for k, v in self.client.hgetall(f"{base}:budget").items()}
        spent_total = _counters(self.client.hgetall(f"{base}:total"))["spend_micros"]
        spent_day = _counters(self.client.hgetall(f"{base}:day:{day}"))["spend_micros"]
        checks = (
            ("total", None, budget.get("total_micros"), spent_total),
            (f"day:{day}", day, budget.get("daily_micros"), spent_day),
        )
        currency = _text(self.client.hget(f"{base}:total", "currency") or b"")
        for flag, on_day, cap, spent in checks:
            kind = "daily" if on_day else "total"
            if cap is not None and spent >= cap:
                self.client.hsetnx(f"{base}:exhausted", flag, int(time.time()))
                self.mark(Exhausted(campaign, kind, on_day, cap, spent, currency))
            else:
                self.client.hdel(f"{base}:exhausted", flag)
                key = self.keys.exhausted_day(on_day) if on_day else self.keys.exhausted
                self.client.srem(key, campaign)
        return self.report(campaign, day)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _counters(raw: dict) -> dict[str, int]:
    values = {_text(k): v for k, v in raw.items()}
    return {name: int(values.get(name, 0)) for name in COUNTERS}


def connect(url: str, cluster: bool, timeout: float) -> Any:
    """Create a redis-py client: ``RedisCluster`` for a cluster, else ``Redis``.

    ``RedisCluster`` asks a node for the slot map here, so this raises while
    the cluster is down; ``Redis`` connects on first use.
    """
    import redis
    from redis.cluster import RedisCluster

    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)
