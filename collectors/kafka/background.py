"""The kafka collector's background thread: delivery reports, probes, spool replay.

One thread per worker, supervised: an exception in a turn of its loop is
logged and counted (``tracker_kafka_thread_restarts_total``) and the loop
resumes after a growing pause; after a few failures in a row the collector
reports itself not ready, with the reason. The thread wakes on
``poll_interval`` and on delivery reports, never per event, and finds spool
segments without scanning the directory on every turn (see
:meth:`tracker.spool.Spool.refresh`, called every ``sync_interval``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

import tracker.metrics as metrics
from collectors.kafka.faults import PERMANENT, THREAD_RESTARTS, TOPICS_MISSING, permanent_reason
from tracker.event import Event
from tracker.spool import Segment

log = logging.getLogger(__name__)

PERMANENT_REASONS = frozenset(PERMANENT.values())
#: Consecutive failed turns after which the collector reports itself not ready.
FAILURES_BEFORE_UNREADY = 3
MAX_BACKOFF = 5.0


class _Batch:
    """Delivery reports of one replayed segment."""

    def __init__(self, collector: Background) -> None:
        self.collector = collector
        self.sent = 0
        self.acked = 0
        self.failed = 0

    def __call__(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self.acked += 1
        elif not self.collector._refused(err, msg.value()):
            self.failed += 1
            self.collector._failed(err, msg.topic())
        else:
            self.acked += 1  # safe in the quarantine: the segment need not keep it

    def settled(self) -> bool:
        return self.acked + self.failed >= self.sent


class Background:
    """The supervised loop, mixed into :class:`~collectors.kafka.KafkaCollector`."""

    def _background(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._turn()
            except Exception as ex:
                failures += 1
                self._fault = (failures, f"{type(ex).__name__}: {ex}")
                THREAD_RESTARTS.labels(self.name).inc()
                log.exception("kafka collector %s: background loop failed; resuming", self.name)
                self._stop.wait(min(MAX_BACKOFF, 0.1 * 2**failures))
                continue
            if failures:
                log.warning("kafka collector %s: background loop recovered", self.name)
                failures = 0
                self._fault = None

    def _turn(self) -> None:
        now = time.monotonic()
        if not self._up and now >= self._next_probe:
            self._next_probe = now + self.options["probe_interval"]
            self._probe()
        self.producer.poll(self.options["poll_interval"])
        now = time.monotonic()
        if now >= self._next_sync:
            self._next_sync = now + self.options["spool"]["sync_interval"]
            self._housekeeping()
        if self._up and (self.spool.active_records() or self.spool.pending()):
            self._replay_one(self._abandon.is_set)

    def _housekeeping(self) -> None:
        """Re-measure the spool, publish its metrics, seal the quarantine, fsync."""
        self.spool.refresh()
        metrics.SPOOL_BYTES.labels(self.name).set(self.spool.size())
        metrics.SPOOL_AGE.labels(self.name).set(self.spool.oldest_age())
        self.quarantine.seal()
        self.spool.sync()

    def _probe(self) -> None:
        """Ask the cluster for its topics: is it up, and does every topic exist?"""
        try:
            existing = set(self.producer.list_topics(timeout=1.0).topics)
        except KafkaException:
            self._set_down("broker_down")
            return
        missing = sorted(self.topics() - existing)
        if missing != self._missing:
            if missing:
                log.error(
                    "kafka collector %s: topics missing: %s (auto-creation is not relied on; "
                    "run `tracker setup`); spooling and not ready until they exist",
                    self.name,
                    ", ".join(missing),
                )
            elif self._missing:
                log.warning("kafka collector %s: every topic exists now", self.name)
        self._missing = missing
        if missing:
            TOPICS_MISSING.labels(self.name).inc()
            self._set_down("topics_missing")
        elif self._fatal is None:
            self._set_up()

    def _replay_one(self, stop: Callable[[], bool]) -> bool:
        """Replay the oldest unowned segment; delete it once every good record is safe.

        A record Kafka refuses for good goes to the quarantine and does not
        hold up the segment; a damaged stretch is skipped, counted and logged.

        Args:
            stop: Returns True when the replay must give up (the segment is kept).

        Returns:
            Whether a segment was replayed completely.
        """
        if self.spool.active_records():
            self.spool.seal()
        segment = self.spool.claim()
        if segment is None:
            return False
        batch = _Batch(self)
        try:
            complete = self._send_segment(segment, batch, stop)
            deadline = time.monotonic() + self.producer_config()["message.timeout.ms"] / 1000
            while not batch.settled() and time.monotonic() < deadline and not stop():
                self.producer.poll(0.1)
        except BaseException:
            segment.release()
            raise
        if complete and batch.settled() and batch.failed == 0:
            self._report_damage(segment)
            self.spool.forget(segment)
            metrics.REPLAYED.labels(self.name).inc(batch.acked)
            return True
        segment.release()
        if self._up and not stop():
            self._set_down("broker_down")  # a delivery failed: probe before trying again
        return False

    def _report_damage(self, segment: Segment) -> None:
        damage = segment.damage
        if damage.regions:
            metrics.SPOOL_DAMAGED.labels(self.name).inc(damage.regions)
            log.error(
                "kafka collector %s: %s: skipped %d damaged stretch(es), %d bytes%s; "
                "every intact record was delivered",
                self.name,
                segment.path.name,
                damage.regions,
                damage.bytes,
                "" if damage.header else " (no segment header)",
            )

    def _send_segment(self, segment: Segment, batch: _Batch, stop: Callable[[], bool]) -> bool:
        for payload in segment.records():
            try:
                event = Event.from_dict(json.loads(payload))
            except (ValueError, KeyError, TypeError):
                metrics.FAILED.labels(self.name, "corrupt_spool_record").inc()
                continue
            while (why := self._produce(event, payload, batch)) is not None:
                if why in PERMANENT_REASONS:
                    if not self.quarantine.put(why, payload, "refused by the producer"):
                        return False
                    break
                if stop() or not self._up or why != "queue_full":
                    return False
                self.producer.poll(0.1)
            else:
                batch.sent += 1
            if stop() or not self._up:
                return False
        return True

    def _refused(self, err: KafkaError, value: bytes) -> bool:
        """Quarantine ``value`` if ``err`` is permanent; return whether it was."""
        reason = permanent_reason(err)
        return reason is not None and self.quarantine.put(reason, value, str(err))
