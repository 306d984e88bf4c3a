"""``tracker load``: the event topics into ClickHouse, exactly once by event id.

A consumer group reads the event topics from the earliest offset, without
auto-commit. Messages are gathered for ``interval`` seconds or ``batch_size``
messages, then, per topic and partition, the offset range becomes one insert
with the deduplication token ``topic:partition:first-last``: ClickHouse drops a
repeat of the same insert. Offsets are committed only after every insert of the
batch succeeded, so a loader killed at any point re-reads what it may not have
written; rows written twice that way (a different range after a restart) are
the same event ids, which the sort key merges and every report counts once.

While ClickHouse refuses (stopped, unwritable, full), the loader pauses its
partitions, keeps its group membership with ``poll`` and retries the same
inserts with exponential backoff: nothing is committed, nothing is lost. A
message that is not an event, or a row ClickHouse refuses, goes to the
dead-letter table with its topic, partition and offset, and the partition moves on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import schema
from .metrics import LoaderMetrics
from .store import Store, StoreError, Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoaderOptions:
    """How the loader consumes and batches."""

    bootstrap: str
    topics: tuple[str, ...]
    group: str = "tracker-reporting"
    batch_size: int = 50_000
    interval: float = 0.5
    once: bool = False
    max_backoff: float = 10.0
    consumer: tuple[tuple[str, Any], ...] = ()


@dataclass
class Part:
    """The messages of one topic-partition in the current batch."""

    topic: str
    partition: int
    first: int
    last: int
    lines: list[bytes]  # the messages with topic, partition and offset spliced in
    values: list[tuple[int, bytes]]  # (offset, message): checked in Python if refused
    dead: list[dict[str, Any]]


class Loader:
    """One consumer, one store, the batch loop; ``stop()`` from a signal handler."""

    def __init__(
        self,
        options: LoaderOptions,
        open_store: Callable[[], Store],
        metrics: LoaderMetrics | None = None,
    ) -> None:
        self.options = options
        self._open_store = open_store
        self.metrics = metrics or LoaderMetrics()
        self.store: Store | None = None
        self.ready = False
        self.stopping = threading.Event()
        self.consumer: Any = None
        self._eof: set[tuple[str, int]] = set()
        self._assigned: set[tuple[str, int]] = set()
        self._committed: dict[tuple[str, int], int] = {}
        self._heads: dict[tuple[str, int], bytes] = {}
        self._probed: dict[tuple[str, int], float] = {}
        self._lag_at = 0.0
        #: perf_counter() of the first message consumed and of the end of run() (benchmark).
        self.first_message_at = self.finished_at = 0.0

    def stop(self) -> None:
        """Finish the current step and exit; an unfinished batch is read again next time."""
        self.stopping.set()

    def connect(self) -> Store:
        """Open the store and create the tables, retrying with backoff until it works."""
        delay = 0.2
        while not self.stopping.is_set():
            try:
                store = self._open_store()
                store.create_tables()
                self.store = store
                return store
            except (Unavailable, StoreError) as ex:
                log.warning("reporting database unavailable, retrying in %.1f s: %s", delay, ex)
                self.stopping.wait(delay)
                delay = min(delay * 2, self.options.max_backoff)
        raise Unavailable("stopped before the reporting database could be opened")

    def run(self) -> int:
        """Consume until stopped (or, with ``once``, until caught up); return an exit code."""
        from confluent_kafka import Consumer

        self.connect()
        opts = self.options
        self.consumer = Consumer(
            {
                "bootstrap.servers": opts.bootstrap,
                "group.id": opts.group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "max.poll.interval.ms": 600_000,
                # A killed loader's partitions go to its successor 10 s later, not 45.
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 3_000,
                "topic.metadata.refresh.interval.ms": 10_000,
                **dict(opts.consumer),
            }
        )
        self.consumer.subscribe(
            list(opts.topics), on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self.ready = True
        started = time.monotonic()
        try:
            while not self.stopping.is_set():
                parts, count = self._gather()
                if parts and not self._write(parts):
                    return 1  # stopped while the database was down: nothing committed
                if count == 0:
                    self.metrics.inserted()
                    self._update_lag(force=False)
                if opts.once and self._caught_up(parts, started):
                    return 0
            return 0
        finally:
            self.finished_at = time.perf_counter()
            self.ready = False
            self.consumer.close()
            self.store.close()

    def _on_assign(self, consumer: Any, partitions: list) -> None:
        self._assigned.update((p.topic, p.partition) for p in partitions)

    def _on_revoke(self, consumer: Any, partitions: list) -> None:
        for p in partitions:
            self._assigned.discard((p.topic, p.partition))
            self._eof.discard((p.topic, p.partition))

    def _caught_up(self, parts: dict, started: float) -> bool:
        if parts:
            return False
        if self._assigned:
            return self._assigned <= self._eof
        return time.monotonic() - started > 10  # no partition to read at all

    def _gather(self) -> tuple[dict[tuple[str, int], Part], int]:
        """Read up to ``batch_size`` messages for at most ``interval`` seconds."""
        from confluent_kafka import KafkaError

        opts = self.options
        parts: dict[tuple[str, int], Part] = {}
        count = 0
        deadline = time.monotonic() + opts.interval
        while count < opts.batch_size and not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            messages = self.consumer.consume(min(opts.batch_size - count, 10_000), left)
            if messages and not self.first_message_at:
                self.first_message_at = time.perf_counter()
            for msg in messages:
                err = msg.error()
                key = (msg.topic(), msg.partition())
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        self._eof.add(key)
                    elif err.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                        log.warning("kafka: %s", err)
                    continue
                self._eof.discard(key)
                count += 1
                self._add(parts, key, msg)
        return parts, count

    def _add(self, parts: dict, key: tuple[str, int], msg: Any) -> None:
        offset, value = msg.offset(), msg.value() or b""
        part = parts.get(key)
        if part is None:
            part = parts[key] = Part(key[0], key[1], offset, offset, [], [], [])
            self._heads.setdefault(key, schema.splice_head(*key))
        part.last = offset
        line = schema.spliced(value, self._heads[key], offset)
        if line is None:
            part.dead.append(_dead(key, offset, "bad_message", "not a JSON object", value))
        else:
            part.lines.append(line)
            part.values.append((offset, value))

    def _write(self, parts: dict[tuple[str, int], Part]) -> bool:
        """Insert every part, retrying while the database is down, then commit."""
        from confluent_kafka import TopicPartition

        started = time.monotonic()
        for part in parts.values():
            self.metrics.messages.labels(part.topic).inc(len(part.lines) + len(part.dead))
        for part in parts.values():
            if not self._retrying(lambda part=part: self._insert_part(part)):
                return False
        offsets = [TopicPartition(p.topic, p.partition, p.last + 1) for p in parts.values()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as ex:  # a rebalance took the partition: the next owner re-reads
            log.warning("commit failed (the rows are in; a re-read counts once): %s", ex)
        self.metrics.inserted()
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        for part in parts.values():
            self._committed[(part.topic, part.partition)] = part.last + 1
        self._update_lag()
        return True

    def _retrying(self, step: Callable[[], None]) -> bool:
        delay, paused = 0.2, False
        try:
            while True:
                try:
                    step()
                    return True
                except StoreError as ex:
                    self.metrics.failures.inc()
                    self.ready = False
                    log.warning("insert failed, retrying in %.1f s: %s", delay, ex)
                if not paused:
                    self.consumer.pause(self.consumer.assignment())
                    paused = True
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline:
                    if self.stopping.is_set():
                        return False
                    self.consumer.poll(min(0.2, delay))  # keeps the group membership
                    self._update_lag(force=False)
                delay = min(delay * 2, self.options.max_backoff)
        finally:
            if paused:
                self.consumer.resume(self.consumer.assignment())
                self.ready = True

    def _insert_part(self, part: Part) -> None:
        token = f"{part.topic}:{part.partition}:{part.first}-{part.last}"
        if part.lines:
            try:
                self.store.insert_raw(schema.EVENTS, b"\n".join(part.lines), token)
                self.metrics.rows.labels(schema.EVENTS).inc(len(part.lines))
            except StoreError as ex:
                if not ex.data_error:
                    raise
                self._checked(part, token)
            part.lines, part.values = [], []
        if part.dead:
            self.store.insert(schema.DEAD_LETTERS, part.dead, token)
            self.metrics.rows.labels(schema.DEAD_LETTERS).inc(len(part.dead))
            for dead in part.dead:
                self.metrics.dead_letters.labels(dead["reason"].split(":", 1)[0]).inc()
            part.dead = []

    def _checked(self, part: Part, token: str) -> None:
        """ClickHouse refused the batch: check each message in Python, insert the good ones."""
        key, rows = (part.topic, part.partition), []
        for offset, value in part.values:
            try:
                rows.append(schema.row(value, part.topic, part.partition, offset))
            except schema.BadMessage as ex:
                part.dead.append(_dead(key, offset, "bad_message", str(ex), value))
        if not rows:
            return
        try:
            self.store.insert(schema.EVENTS, rows, f"{token}:checked")
            self.metrics.rows.labels(schema.EVENTS).inc(len(rows))
        except StoreError as ex:
            if not ex.data_error:
                raise
            self._one_by_one(part, rows)

    def _one_by_one(self, part: Part, rows: list[dict[str, Any]]) -> None:
        """Insert the rows singly; the ones ClickHouse refuses become dead letters."""
        key = (part.topic, part.partition)
        for row in rows:
            offset = row["offset"]
            try:
                self.store.insert(schema.EVENTS, [row], f"{key[0]}:{key[1]}:{offset}")
                self.metrics.rows.labels(schema.EVENTS).inc()
            except StoreError as ex:
                if not ex.data_error:
                    raise
                part.dead.append(_dead(key, offset, "refused", str(ex), repr(row).encode()))

    def _update_lag(self, force: bool = True) -> None:
        """Set the lag gauges: the partition's end minus what is committed (once a second)."""
        from confluent_kafka import TopicPartition

        now = time.monotonic()
        if not force and now - self._lag_at < 1.0:
            return
        self._lag_at = now
        for topic, partition in sorted(self._assigned):
            tp = TopicPartition(topic, partition)
            try:
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                # A partition that has sent nothing has no cached end: ask the broker,
                # at most every 10 s, so idle partitions show their lag (0) too.
                if high < 0 and now - self._probed.get((topic, partition), 0.0) > 10:
                    self._probed[(topic, partition)] = now
                    low, high = self.consumer.get_watermark_offsets(tp, 1, cached=False)
                done = self._committed.get((topic, partition))
                if done is None:
                    done = self.consumer.position([tp])[0].offset
            except Exception:
                continue
            if done < 0:  # nothing read or committed yet: the group starts at the earliest
                done = low
            if high >= 0 and done >= 0:
                self.metrics.lag.labels(topic, str(partition)).set(max(0, high - done))


def _dead(key: tuple[str, int], offset: int, reason: str, error: str, value: Any) -> dict:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return {
        "topic": key[0],
        "partition": key[1],
        "offset": offset,
        "reason": f"{reason}: {error}"[:1000],
        "message": text[:100_000],
    }
