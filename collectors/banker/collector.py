"""The ``banker`` collector: billable notices to an exactly-once spend ledger in Redis.

``collect`` reduces a notice to an :class:`~collectors.banker.ledger.Entry` and
queues it in the collector's outbox (:mod:`tracker.spool.outbox`); nothing
else happens on the request path. The outbox's thread, started after the fork,
wakes every ``flush_interval`` seconds and hands the queue to :meth:`send`,
which applies it to Redis, one Lua call per campaign and ``batch_size``
entries, all in one pipelined round trip: each notice's id is set with ``NX``
and a TTL in the same atomic step that adds its spend, so a duplicate, a
retried flush, a replayed spool or a second replica never count a notice twice.

While Redis is down the outbox keeps what it holds, up to ``max_pending``
notices, retries with exponential backoff, and spools the rest, replayed once
Redis answers. Caps reached in a flush are announced once: the campaign goes
into the documented exhausted sets, and a notice goes to the Kafka budget topic.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from typing import ClassVar

from tracker.event import Event
from tracker.plugins import Refused
from tracker.spool import OutboxCollector, Report

from . import metrics
from .entries import Entries
from .guard import Guard
from .ledger import Applied, Entry, Exhausted, Ledger, connect
from .notices import BudgetNotices
from .options import BankerConfig, BankerOptions

log = logging.getLogger(__name__)

#: A price token another worker admitted with another auction, found in the ledger's step.
TOKEN_REPLAYED = Refused(
    409,
    "price_token_reused",
    "This encrypted price was already used by another auction; it was taken but not billed.",
)


class BankerCollector(OutboxCollector):
    """Aggregate billable notices per campaign and line item; apply them to Redis."""

    options_schema: ClassVar = BankerOptions
    refusals: ClassVar = Guard.REFUSALS
    sink_noun = "redis"
    record_noun = "notices"

    def __init__(self, name: str, options: BankerConfig) -> None:
        super().__init__(name, options)
        self.entries = Entries(name, options)
        self.guard = Guard(name, options)
        self.notices = BudgetNotices(name, options.budget_events)
        self.make_outbox(
            options.spool,
            interval=options.flush_interval,
            max_pending=options.max_pending,
            backoff=(options.backoff_initial, options.backoff_max),
        )
        self.ledger: Ledger | None = None
        self._announce: list[Exhausted] = []
        self._known: set[str] = set()

    # --- set-up ------------------------------------------------------------------------

    def setup(self, timeout: float) -> list[str]:
        """Create the budget topic; report whether Redis answers (it needs no set-up)."""
        import redis

        opts = self.options
        try:
            connect(opts.redis_url, opts.cluster, timeout).ping()
            answer = "answers"
        except redis.RedisError as ex:
            answer = f"does not answer yet ({ex})"
        kind = "cluster" if opts.cluster else "server"
        return [f"redis {kind} {answer}", *self.notices.setup(timeout)]

    def connect(self) -> None:
        """Bind the metrics, read the currencies and create the budget producer (after the fork).

        The currencies are read here, before the worker is ready, so the first
        notices are judged like later ones (Redis down: they are read later).
        """
        self.entries.open()
        self.notices.open()
        self.tidy()

    def disconnect(self, timeout: float) -> None:
        """Wait for the budget notices still in their producer."""
        self.notices.close(timeout)

    # --- records ------------------------------------------------------------------------

    def admit(self, event: Event, timeout: float | None) -> None:
        """Refuse a notice in another currency or with another auction's token (guard.py).

        Decided from what the worker holds: no round trip on the request thread.
        """
        entry = self.entries.entry(event, count=False)
        if entry is not None:
            self.guard.check(entry)

    def tidy(self) -> None:
        """Re-read the configured currencies when they changed (the outbox's thread)."""
        import redis

        try:
            ledger = self._ledger()
        except (redis.RedisError, OSError):
            return  # RedisCluster asks for the slot map here; the next turn tries again
        self.guard.refresh(ledger.client, ledger.campaigns)

    def record(self, event: Event) -> Entry | None:
        """The notice's ledger entry; ``None`` (counted as skipped) when it is not spent."""
        return self.entries.entry(event)

    def encode(self, record: Entry) -> bytes:
        """An entry as spooled: a JSON list."""
        return json.dumps(record, separators=(",", ":")).encode()

    def decode(self, payload: bytes) -> Entry:
        """An entry from the spool."""
        return Entry(*json.loads(payload))

    def deliver(self, event: Event, timeout: float) -> bool:
        """Queue the notice like :meth:`collect`: the ledger is not a durable path.

        A notice lost with a killed worker is in the path's durable Kafka topic
        and the log files, and ``tracker replay`` spends only what the ledger
        lacks; an fsync per notice here would cost every ``/bill`` request.
        """
        self.collect(event)
        return True

    # --- the sink --------------------------------------------------------------------

    def send(self, records: list[Entry], report: Report) -> None:
        """Apply the entries in one pipelined round trip; retry those Redis did not take."""
        import redis

        started = time.perf_counter()
        failed: list[Entry] = records
        error: Exception | None = None
        try:
            ledger = self._ledger()
            failed, error = self._apply(ledger, records, report)
            self._announce_all(ledger)
        except redis.RedisError as ex:
            error = ex
        for entry in failed:
            report.retry(entry, "redis_error")
        if error is not None:
            metrics.REDIS_ERRORS.labels(self.name).inc()
            self.outbox.set_down("redis_down", f"{type(error).__name__}: {error}")
        else:
            metrics.FLUSH_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    def _ledger(self) -> Ledger:
        if self.ledger is None:
            opts = self.options
            client = connect(opts.redis_url, opts.cluster, opts.socket_timeout)
            self.ledger = Ledger.from_options(client, opts)
        return self.ledger

    def _apply(
        self, ledger: Ledger, entries: list[Entry], report: Report
    ) -> tuple[list[Entry], Exception | None]:
        """Apply ``entries``, one script call per campaign and ``batch_size`` entries.

        Returns:
            The entries of the batches that were not applied, and the error of one.
        """
        size = self.options.batch_size
        work: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            work[entry.campaign].append(entry)
        batches = [
            (campaign, chunk[i : i + size])
            for campaign, chunk in work.items()
            for i in range(0, len(chunk), size)
        ]
        new = tuple(campaign for campaign in work if campaign not in self._known)
        results = ledger.apply_many(batches, new)
        self._known.update(new)
        failed: list[Entry] = []
        error = None
        for (_, chunk), result in zip(batches, results, strict=True):
            if isinstance(result, Exception):
                failed.extend(chunk)
                error = result
                continue
            report.ack(len(chunk))
            self._count(result)
            for entry in result.reused:
                self.late_refusal(f"_{self.name}", TOKEN_REPLAYED, entry.identity())
        return failed, error

    def _count(self, result: Applied) -> None:
        metrics.APPLIED.labels(self.name).inc(result.applied)
        metrics.DUPLICATES.labels(self.name).inc(result.duplicates)
        for reason, count in result.flagged().items():
            if count:
                metrics.SKIPPED.labels(self.name, reason).inc(count)
        metrics.OVERSPEND.labels(self.name, "total").inc(result.overspend_total)
        metrics.OVERSPEND.labels(self.name, "daily").inc(result.overspend_daily)
        self._announce.extend(result.exhausted)

    def _announce_all(self, ledger: Ledger) -> None:
        while self._announce:
            exhausted = self._announce[0]
            ledger.mark(exhausted)
            self._announce.pop(0)
            metrics.EXHAUSTED.labels(self.name, exhausted.cap).inc()
            log.warning(
                "banker %s: campaign %s reached its %s cap (%d of %d micros)",
                self.name,
                exhausted.campaign,
                exhausted.cap,
                exhausted.spend_micros,
                exhausted.cap_micros,
            )
            self.notices.send(exhausted)
