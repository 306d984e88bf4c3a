"""The ``banker`` collector: billable notices to an exactly-once spend ledger in Redis.

``collect`` reduces a notice to an :class:`~collectors.banker.ledger.Entry`
and appends it to this worker's in-memory aggregate under a lock; nothing
else happens on the request path. A background flusher, started in
:meth:`BankerCollector.open` (after the fork), wakes every ``flush_interval``
seconds and applies the aggregate to Redis, one Lua call per campaign and
``batch_size`` entries: each notice's id is set with ``NX`` and a TTL in the
same atomic step that adds its spend, so a duplicate, a retried flush, a
replayed spool or a second replica never count a notice twice.

While Redis is down the aggregate is kept, up to ``max_pending`` notices, and
retried with exponential backoff; past the bound new notices go to the
collector's durable spool (:mod:`tracker.spool`), replayed once Redis answers.
Caps reached in a flush are announced once: the campaign goes into the
documented exhausted sets, and a notice goes to the Kafka budget topic.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from typing import Any, ClassVar

import tracker.metrics as core_metrics
from tracker.event import Event
from tracker.plugins import Collector
from tracker.spool import Spool

from . import metrics
from .entries import Entries
from .guard import Guard
from .ledger import Applied, Entry, Exhausted, Ledger, connect
from .notices import BudgetNotices
from .options import BankerOptions

log = logging.getLogger(__name__)

#: How often a running worker looks for spool segments left by others (seconds).
RESCAN_INTERVAL = 30.0


class BankerCollector(Collector):
    """Aggregate billable notices per campaign and line item; flush them to Redis."""

    options_schema: ClassVar = BankerOptions
    refusals: ClassVar = Guard.REFUSALS

    def __init__(self, name, options):
        super().__init__(name, options)
        self.entries = Entries(name, options)
        self.guard = Guard(name, options)
        spool = options["spool"]
        self.spool = Spool(spool["directory"], spool["max_bytes"], spool["segment_bytes"])
        self.notices = BudgetNotices(name, options["budget_events"])
        self.ledger: Ledger | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, list[Entry]] = defaultdict(list)
        self._held = 0  # entries pending or in flight in this process
        self._held_micros = 0  # and their spend (for the gauge; mixed currencies)
        self._announce: list[Exhausted] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._up = True
        self._error = ""
        self._backoff = 0.0
        self._next_try = 0.0
        self._next_rescan = 0.0
        self._replay_due = False
        self._known: set[str] = set()
        self._collected: Any = None  # metric children, bound in open(): they open files
        self.lost = 0

    # --- set-up ------------------------------------------------------------------------

    def setup(self, timeout: float) -> list[str]:
        """Create the budget topic; report whether Redis answers (it needs no set-up)."""
        import redis

        opts = self.options
        try:
            connect(opts["redis_url"], opts["cluster"], timeout).ping()
            answer = "answers"
        except redis.RedisError as ex:
            answer = f"does not answer yet ({ex})"
        kind = "cluster" if opts["cluster"] else "server"
        return [f"redis {kind} {answer}", *self.notices.setup(timeout)]

    def open(self) -> None:
        """Open the spool and the budget producer; start this worker's flusher."""
        self.spool.open()
        self._collected = core_metrics.COLLECTED.labels(self.name)
        self.entries.open()
        self._replay_due = self.spool.pending()
        self.notices.open()
        self._stop.clear()
        self._set_up(True, "")
        self._flusher = threading.Thread(
            target=self._background, name=f"banker-{self.name}", daemon=True
        )
        self._flusher.start()

    # --- the request path ----------------------------------------------------------------

    def admit(self, event: Event, timeout: float | None) -> None:
        """Refuse a notice in another currency or with another auction's token (guard.py)."""
        entry = self.entries.entry(event, count=False)
        if entry is not None:
            self.guard.check(entry, self._ledger if timeout is not None and self._up else None)

    def collect(self, event: Event) -> None:
        """Append the notice's spend to the aggregate; never blocks on Redis."""
        entry = self.entries.entry(event)
        if entry is None:
            return
        self._collected.inc()
        with self._lock:
            if self._held < self.options["max_pending"]:
                self._pending[entry.campaign].append(entry)
                self._held += 1
                self._held_micros += entry.spend
                return
        self._to_spool([entry])

    def _to_spool(self, entries: list[Entry]) -> None:
        self._replay_due = True
        for entry in entries:
            try:
                written = self.spool.append(json.dumps(entry, separators=(",", ":")).encode())
            except OSError as ex:
                log.error("banker %s: spool write failed, spend lost: %s", self.name, ex)
                written = False
            if written:
                metrics.SPOOLED.labels(self.name).inc()
                core_metrics.SPOOLED.labels(self.name, "redis_pending_full").inc()
            else:
                self.lost += 1
                core_metrics.FAILED.labels(self.name, "spool_full").inc()

    # --- the flusher --------------------------------------------------------------------

    def _background(self) -> None:
        interval = self.options["flush_interval"]
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self.flush_once()
            except Exception as ex:
                # A client-side error (redis-py's cluster errors are not all RedisError)
                # must not end the thread: the pending spend stays and is retried.
                log.exception("banker %s: flush failed", self.name)
                metrics.REDIS_ERRORS.labels(self.name).inc()
                self._failed(ex)

    def flush_once(self) -> None:
        """Apply what is pending to Redis; on failure keep it for the next try."""
        with self._lock:
            work, self._pending = self._pending, defaultdict(list)
        try:
            self._apply_all(work)
        finally:
            with self._lock:
                for campaign, entries in work.items():
                    if entries:
                        self._pending[campaign][:0] = entries
                metrics.PENDING.labels(self.name).set(self._held)
                metrics.PENDING_MICROS.labels(self.name).set(self._held_micros)
            self.spool.sync()

    def _apply_all(self, work: dict[str, list[Entry]]) -> None:
        now = time.monotonic()
        if not self._up and now < self._next_try:
            return
        if not (work or self._announce or self._replay_due or now >= self._next_rescan):
            return
        import redis

        started = time.perf_counter()
        try:
            ledger = self._ledger()
            error = self._apply_batches(ledger, work, replay=False)
            self._announce_all(ledger)
            if error is None and now >= self._next_rescan:
                self._next_rescan = now + RESCAN_INTERVAL
                self._replay_due = self._replay_due or self.spool.pending()
            if error is None and self._replay_due:
                self._replay_due = self._replay_one(ledger)
        except redis.RedisError as ex:
            error = ex
        if error is not None:
            metrics.REDIS_ERRORS.labels(self.name).inc()
            self._failed(error)
            return
        if work:
            metrics.FLUSH_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        self._set_up(True, "")

    def _ledger(self) -> Ledger:
        if self.ledger is None:
            opts = self.options
            client = connect(opts["redis_url"], opts["cluster"], opts["socket_timeout"])
            self.ledger = Ledger.from_options(client, opts)
        return self.ledger

    def _apply_batches(
        self, ledger: Ledger, work: dict[str, list[Entry]], replay: bool
    ) -> Exception | None:
        """Apply ``work`` in one pipelined round trip; leave in it only what failed.

        Returns:
            The error of a batch that was not applied, if any.
        """
        size = self.options["batch_size"]
        batches = [
            (campaign, entries[i : i + size])
            for campaign, entries in work.items()
            for i in range(0, len(entries), size)
        ]
        if not batches:
            return None
        new = tuple(campaign for campaign in work if campaign not in self._known)
        results = ledger.apply_many(batches, new)
        self._known.update(new)
        work.clear()
        error = None
        done = micros = 0
        for (campaign, chunk), result in zip(batches, results, strict=True):
            if isinstance(result, Exception):
                error = result
                work.setdefault(campaign, []).extend(chunk)
                continue
            done += len(chunk)
            micros += sum(e.spend for e in chunk)
            self._count(result, replay)
        if not replay:
            with self._lock:
                self._held -= done
                self._held_micros -= micros
        return error

    def _count(self, result: Applied, replay: bool) -> None:
        if replay:
            metrics.REPLAYED.labels(self.name).inc(result.applied)
        metrics.APPLIED.labels(self.name).inc(result.applied)
        core_metrics.DELIVERED.labels(self.name).inc(result.applied)
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

    def _replay_one(self, ledger: Ledger) -> bool:
        """Apply the oldest free spool segment; return whether more may be waiting."""
        if self.spool.active_records():
            self.spool.seal()
        segment = self.spool.claim()
        if segment is None:
            return False
        try:
            grouped: dict[str, list[Entry]] = defaultdict(list)
            for payload in segment.records():
                try:
                    entry = Entry(*json.loads(payload))
                except (ValueError, TypeError):
                    core_metrics.FAILED.labels(self.name, "corrupt_spool_record").inc()
                    continue
                grouped[entry.campaign].append(entry)
            error = self._apply_batches(ledger, grouped, replay=True)
            if error is not None:
                raise error
        except BaseException:
            segment.release()
            raise
        self.spool.forget(segment)
        log.info("banker %s: replayed spool segment %s", self.name, segment.path.name)
        return True

    def _failed(self, ex: Exception) -> None:
        self._backoff = min(
            self.options["backoff_max"], max(self.options["backoff_initial"], self._backoff * 2)
        )
        self._next_try = time.monotonic() + self._backoff
        self._set_up(False, f"{type(ex).__name__}: {ex}")

    def _set_up(self, up: bool, error: str) -> None:
        if up != self._up:
            if up:
                log.warning("banker %s: redis up again", self.name)
            else:
                log.warning("banker %s: redis down, keeping spend pending: %s", self.name, error)
        if up:
            self._backoff = 0.0
        self._up = up
        self._error = error
        metrics.REDIS_UP.labels(self.name).set(1 if up else 0)

    # --- shutdown and health -----------------------------------------------------------

    def pending(self) -> int:
        """Notices taken by this process and not yet applied to Redis."""
        with self._lock:
            return self._held

    def flush(self, timeout: float) -> int:
        """Wake the flusher and wait up to ``timeout`` s; return what is still pending."""
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline and self._flusher is not None:
            self._wake.set()
            time.sleep(min(0.01, self.options["flush_interval"]))
        return self.pending()

    def close(self, timeout: float) -> int:
        """Flush within ``timeout``, spool what is left, stop the producer.

        Returns:
            The number of notices neither applied nor spooled (lost).
        """
        if self._flusher is None:
            return 0
        lost_before = self.lost
        deadline = time.monotonic() + timeout
        if self._up:  # while Redis is down, spool at once: the other collectors need the time
            self.flush(timeout / 2)
        self._stop.set()
        self._wake.set()
        self._flusher.join(timeout=max(0.5, deadline - time.monotonic()))
        self._flusher = None
        with self._lock:
            left = [e for entries in self._pending.values() for e in entries]
            self._pending.clear()
            self._held = self._held_micros = 0
        if left:
            self._to_spool(left)
            log.warning("banker %s: spooled %d notices at shutdown", self.name, len(left))
        self.spool.close()
        self.notices.close(max(0.0, deadline - time.monotonic()))
        return self.lost - lost_before

    def healthy(self) -> bool:
        """Return whether spend is safe: Redis takes flushes, or the spool has room."""
        return self._flusher is not None and (self._up or self.spool.has_room(64 << 10))

    def status(self) -> str:
        """Describe Redis, the pending aggregate and the spool for ``/readyz``."""
        if self._flusher is None:
            return "not open"
        state = "redis up" if self._up else f"redis down ({self._error}), retrying"
        return (
            f"{state}; {self.pending()} of {self.options['max_pending']} notices pending; "
            f"spool {self.spool.size()} of {self.spool.max_bytes} bytes"
        )
