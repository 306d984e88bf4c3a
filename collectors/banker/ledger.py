"""The spend ledger in Redis: key layout, the exactly-once Lua step, reads and budgets.

Every key of a campaign carries the hash tag ``{<campaign_id>}``, so one script
call touches one slot and works unchanged on Redis Cluster. What must hold
across campaigns (an event id spent once, a price token bound to its auction)
is claimed first, in keys of its own (:mod:`collectors.banker.claims`). The
layout, units and the way a bidder reads it are documented in ``docs/banker.md``.
"""

from __future__ import annotations

import time
from typing import Any

from . import currencies
from .claims import TOKEN_REUSED, ClaimKeys, claim
from .records import COUNTERS, FLAGS, Applied, Entry, Exhausted
from .script import APPLY

__all__ = ["Applied", "Entry", "Exhausted", "Ledger", "connect"]


class Keys(ClaimKeys):
    """Key names under one prefix; ``{campaign}`` is the hash tag."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix)
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

    def __init__(
        self,
        client: Any,
        prefix: str,
        id_ttl: int = 259_200,
        day_ttl: int = 7776000,
        currency: str = "USD",
        token_ttl: int = 259_200,
    ) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.id_ttl = id_ttl
        self.day_ttl = day_ttl
        self.currency = currency  # of every campaign without a currency of its own
        self.token_ttl = token_ttl
        self._sha: str | None = None

    @classmethod
    def from_options(cls, client: Any, options: Any) -> Ledger:
        """A ledger as the banker block ``options`` configures it."""
        return cls(
            client,
            options.key_prefix,
            options.id_ttl,
            options.day_ttl,
            options.default_currency,
            options.token_ttl,
        )

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
        """Claim the batches' ids and tokens, then apply each batch, in two pipelined round trips.

        Each batch is its own atomic step (a cluster pipeline sends each node
        its share), so one may fail while others are applied; a batch whose
        claims failed is not sent, and is retried whole.

        Args:
            batches: ``(campaign, entries)`` pairs, one script call each.
            register: Campaigns to add to the campaigns set first.

        Returns:
            Per batch, what it did, or the error that left it unapplied.

        Raises:
            redis.RedisError: Nothing could be sent (connection refused...).
        """
        import redis

        verdicts = claim(self.client, self.keys, batches, self.id_ttl, self.token_ttl)
        ready = [i for i, v in enumerate(verdicts) if not isinstance(v, Exception)]
        replies: list[Any] = list(verdicts)
        calls = [(*batches[i], verdicts[i]) for i in ready]
        for i, reply in zip(ready, self._send(calls, register), strict=True):
            replies[i] = reply
        if any(isinstance(replies[i], redis.exceptions.NoScriptError) for i in ready):
            # Redis restarted (or failed over) without its script cache: load the
            # script again and resend; a step either ran or raised NOSCRIPT, never half.
            self._sha = None
            again = [i for i in ready if isinstance(replies[i], Exception)]
            resent = self._send([(*batches[i], verdicts[i]) for i in again])
            for i, reply in zip(again, resent, strict=True):
                replies[i] = reply
        results: list[Applied | Exception] = []
        for (campaign, entries), reply, verdict in zip(batches, replies, verdicts, strict=True):
            if isinstance(reply, Exception):
                results.append(reply)
                continue
            result = self._result(campaign, reply)
            # Flagged now, not a retry's duplicate: the notices to report as refused.
            reused = [e for e, v in zip(entries, verdict, strict=True) if v == TOKEN_REUSED]
            result.reused = reused[: result.token_reused]
            results.append(result)
        return results

    def _send(self, batches: list[tuple[str, list[Entry], Any]], register: tuple[str, ...] = ()):
        if self._sha is None:
            self._sha = self.client.script_load(APPLY)
        pipe = self.client.pipeline(transaction=False)
        if register:
            pipe.sadd(self.keys.campaigns, *register)
        for campaign, entries, verdicts in batches:
            keys, args = self._call(campaign, entries, verdicts)
            # execute_command: redis-py blocks pipe.evalsha() in cluster pipelines, but
            # routes a raw EVALSHA by its keys' slot like any other command.
            pipe.execute_command("EVALSHA", self._sha, len(keys), *keys, *args)
        return pipe.execute(raise_on_error=False)[1 if register else 0 :]

    def _call(
        self, campaign: str, entries: list[Entry], verdicts: list[int]
    ) -> tuple[list[str], list[Any]]:
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
        for e, verdict in zip(entries, verdicts, strict=True):
            day_i = at(f"{base}:day:{e.day}")
            days[day_i] = e.day
            li_i = at(f"{base}:li:{e.line_item}") if e.line_item else 0
            liday_i = at(f"{base}:li:{e.line_item}:day:{e.day}") if e.line_item else 0
            items += (at(f"{base}:id:{e.event_id}"), day_i, li_i, liday_i)
            items += (e.spend, int(e.late), e.currency, verdict)
        args: list[Any] = [self.id_ttl, self.day_ttl, int(time.time()), self.currency, len(days)]
        for key_i, day in days.items():
            args += (key_i, day)
        args += (len(line_items), *line_items, len(entries), *items)
        return keys, args

    @staticmethod
    def _result(campaign: str, reply: list) -> Applied:
        text = [r.decode() if isinstance(r, bytes) else r for r in reply]
        result = Applied(*(int(n) for n in text[:7]))
        currency = text[7]
        for i in range(8, len(text), 3):
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
        total = {_text(k): _text(v) for k, v in self.client.hgetall(f"{base}:total").items()}
        budget, own_currency = _budget(self.client.hgetall(f"{base}:budget"))
        flags = {_text(k) for k in self.client.hkeys(f"{base}:exhausted")}
        line_items = {}
        for li in sorted(_text(x) for x in self.client.smembers(f"{base}:line_items")):
            counters = _counters(self.client.hgetall(f"{base}:li:{li}{suffix}"))
            if counters["events"]:
                line_items[li] = counters
        cap = budget.get("daily_micros" if day else "total_micros")
        return {
            **ledger,
            "currency": own_currency or total.get("currency") or self.currency,
            "budget": budget,
            # Notices flagged in the ledger's step and not spent (docs/banker.md).
            "flagged": {name: int(total.get(name, 0)) for name in FLAGS},
            "overspend_micros": max(0, ledger["spend_micros"] - cap) if cap is not None else 0,
            "exhausted": (f"day:{day}" if day else "total") in flags,
            "line_items": line_items,
        }

    # --- budgets ----------------------------------------------------------------------

    def set_budget(
        self,
        campaign: str,
        daily: int | None,
        total: int | None,
        day: str,
        currency: str | None = None,
    ) -> dict[str, Any]:
        """Set caps (``None`` leaves one as is, a negative value removes it) and the currency.

        The exhausted flags and sets follow the new caps at once: raising a cap
        above the spend re-opens the campaign, lowering it below marks it.

        Returns:
            The campaign's report for ``day`` after the change.

        Raises:
            ValueError: ``currency`` is not the one the campaign has spent in.
        """
        base = self.keys.base(campaign)
        if currency is not None:
            spent_in = _text(self.client.hget(f"{base}:total", "currency") or b"")
            if spent_in and spent_in != currency:
                raise ValueError(f"campaign {campaign} has spend in {spent_in}; it stays in it")
            self.client.hset(f"{base}:budget", "currency", currency)
            # The copy every worker admits notices by (currencies.py).
            currencies.publish(self.client, self.keys.prefix, campaign, currency)
        for name, value in (("daily_micros", daily), ("total_micros", total)):
            if value is None:
                continue
            if value < 0:
                self.client.hdel(f"{base}:budget", name)
            else:
                self.client.hset(f"{base}:budget", name, value)
        self.register(campaign)
        budget, _ = _budget(self.client.hgetall(f"{base}:budget"))
        spent_total = _counters(self.client.hgetall(f"{base}:total"))["spend_micros"]
        spent_day = _counters(self.client.hgetall(f"{base}:day:{day}"))["spend_micros"]
        checks = (
            ("total", None, budget.get("total_micros"), spent_total),
            (f"day:{day}", day, budget.get("daily_micros"), spent_day),
        )
        report = self.report(campaign, day)
        for flag, on_day, cap, spent in checks:
            kind = "daily" if on_day else "total"
            if cap is not None and spent >= cap:
                self.client.hsetnx(f"{base}:exhausted", flag, int(time.time()))
                self.mark(Exhausted(campaign, kind, on_day, cap, spent, report["currency"]))
            else:
                self.client.hdel(f"{base}:exhausted", flag)
                key = self.keys.exhausted_day(on_day) if on_day else self.keys.exhausted
                self.client.srem(key, campaign)
        return self.report(campaign, day)


def _budget(raw: dict) -> tuple[dict[str, int], str | None]:
    """Split a budget hash into its caps and its currency."""
    values = {_text(k): _text(v) for k, v in raw.items()}
    currency = values.pop("currency", None)
    return {k: int(v) for k, v in values.items()}, currency


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
