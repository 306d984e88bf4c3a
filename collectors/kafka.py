"""The ``kafka`` collector: one confluent-kafka producer per worker, backed by a spool.

The producer is created in :meth:`KafkaCollector.open`, after gunicorn forks
the worker (librdkafka's threads do not survive a fork). ``collect`` only
enqueues: ``produce`` plus a non-blocking ``poll(0)``; a background thread
serves delivery reports, so a request never waits on the broker.

Nothing accepted is dropped: an event the producer cannot take (queue full,
broker down) or fails to deliver goes to the collector's durable spool
(:mod:`tracker.spool`), and the background thread replays the spool, oldest
first, once the broker answers again. While the broker is down, new events go
straight to the spool, so the producer's memory stays bounded. Events of
``durable`` paths are written ahead to the spool with fsync and sent by the
same replay, continuously.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from marshmallow import Schema, ValidationError, fields, validate, validates

from tracker import metrics
from tracker.event import Event
from tracker.plugins import Collector
from tracker.spool import Segment, Spool

log = logging.getLogger(__name__)

#: Producer settings that favour no loss, no duplicates and bounded memory;
#: the config's ``producer`` block overrides them.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 50_000,
    "queue.buffering.max.kbytes": 32_768,
    "message.timeout.ms": 60_000,
}


def _check_key(value: str) -> None:
    if value in ("id", "none") or value.startswith(("dimensions.", "context.")):
        return
    raise ValidationError("Must be id, none, dimensions.<name> or context.<name>.")


class EventRouting(Schema):
    """Topic and key for one event type."""

    topic = fields.String(required=True, validate=validate.Length(min=1, max=249))
    key = fields.String(load_default="id", validate=_check_key)


class TopicSettings(Schema):
    """How ``tracker setup`` creates the topics."""

    partitions = fields.Integer(load_default=3, validate=validate.Range(min=1))
    replication_factor = fields.Integer(load_default=1, validate=validate.Range(min=1))
    config = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class SpoolSettings(Schema):
    """Where and how much the collector spools."""

    directory = fields.String(required=True, validate=validate.Length(min=1))
    max_bytes = fields.Integer(load_default=1 << 30, validate=validate.Range(min=1 << 20))
    segment_bytes = fields.Integer(load_default=16 << 20, validate=validate.Range(min=64 << 10))
    sync_interval = fields.Float(load_default=1.0, validate=validate.Range(min=0.01, max=60))


class KafkaOptions(Schema):
    """Options of the ``kafka`` collector."""

    bootstrap_servers = fields.String(required=True, validate=validate.Length(min=1))
    topic = fields.String(required=True, validate=validate.Length(min=1, max=249))
    key = fields.String(load_default="id", validate=_check_key)
    events = fields.Dict(
        keys=fields.String(), values=fields.Nested(EventRouting), load_default=dict
    )
    producer = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)
    topics = fields.Nested(TopicSettings, load_default=lambda: TopicSettings().load({}))
    spool = fields.Nested(SpoolSettings, required=True)
    poll_interval = fields.Float(load_default=0.1, validate=validate.Range(min=0.001, max=5))
    probe_interval = fields.Float(load_default=1.0, validate=validate.Range(min=0.1, max=60))

    @validates("producer")
    def _no_bootstrap(self, value: dict, **kwargs: Any) -> None:
        if "bootstrap.servers" in value:
            raise ValidationError("Set bootstrap_servers, not producer.bootstrap.servers.")


class _Batch:
    """Delivery reports of one replayed segment."""

    def __init__(self) -> None:
        self.sent = 0
        self.acked = 0
        self.failed = 0

    def __call__(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self.acked += 1
        else:
            self.failed += 1

    def settled(self) -> bool:
        return self.acked + self.failed >= self.sent


class KafkaCollector(Collector):
    """Produce each event as JSON to a topic chosen by its type.

    The message key is the event id by default (so a replay lands on the same
    partition), or a dimension such as the campaign id; the message timestamp
    is the event's receive time.
    """

    options_schema: ClassVar = KafkaOptions

    def __init__(self, name, options):
        super().__init__(name, options)
        self.routing = {t: (r["topic"], r["key"]) for t, r in options["events"].items()}
        self.default_routing = (options["topic"], options["key"])
        spool = options["spool"]
        self.spool = Spool(spool["directory"], spool["max_bytes"], spool["segment_bytes"])
        self.producer: Producer | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._up = True
        self.lost = 0

    # --- set-up ------------------------------------------------------------------

    def producer_config(self) -> dict[str, Any]:
        """Return the librdkafka settings: defaults, then the config's ``producer``."""
        return {
            **PRODUCER_DEFAULTS,
            **self.options["producer"],
            "bootstrap.servers": self.options["bootstrap_servers"],
        }

    def topics(self) -> set[str]:
        """Every topic this collector may write to."""
        return {self.default_routing[0], *(topic for topic, _ in self.routing.values())}

    def setup(self, timeout: float) -> list[str]:
        """Create the topics that do not exist yet."""
        admin = AdminClient({"bootstrap.servers": self.options["bootstrap_servers"]})
        existing = set(admin.list_topics(timeout=timeout).topics)
        settings = self.options["topics"]
        report = [f"topic {t} exists" for t in sorted(self.topics() & existing)]
        wanted = sorted(self.topics() - existing)
        if not wanted:
            return report
        new = [
            NewTopic(
                t,
                num_partitions=settings["partitions"],
                replication_factor=settings["replication_factor"],
                config=settings["config"],
            )
            for t in wanted
        ]
        futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
        for topic, future in futures.items():
            try:
                future.result(timeout)
                report.append(f"topic {topic} created")
            except KafkaException as ex:
                if ex.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                report.append(f"topic {topic} exists")
        return report

    def open(self) -> None:
        """Open the spool, create this worker's producer and its background thread."""
        self.spool.open()
        self.producer = Producer({**self.producer_config(), "error_cb": self._on_error})
        self._stop.clear()
        self._set_up(True)
        self._poller = threading.Thread(
            target=self._background, name=f"kafka-{self.name}", daemon=True
        )
        self._poller.start()

    # --- the request path ------------------------------------------------------------

    def collect(self, event: Event) -> None:
        """Enqueue the event, or spool it if the producer cannot take it."""
        value = event.to_json()
        if not self._up:
            self._to_spool(value, "broker_down")
        elif not self._produce(event, value, self._on_delivery):
            self._to_spool(value, "queue_full")

    def deliver(self, event: Event, timeout: float) -> bool:
        """Journal the event with fsync; the background thread sends it within ~0.1 s.

        Writing ahead to the spool makes the answer wait for one local fsync
        instead of a broker round trip, which would hold a meinheld worker. The
        spool's replay delivers it and deletes the segment once acknowledged,
        so there is no second copy to de-duplicate.
        """
        return self._to_spool(event.to_json(), "durable", sync=True)

    def _produce(self, event: Event, value: bytes, callback: Any) -> bool:
        topic, key_spec = self.routing.get(event.type, self.default_routing)
        try:
            self.producer.produce(
                topic,
                value=value,
                key=self._key(event, key_spec),
                timestamp=int(event.received_at * 1000),
                on_delivery=callback,
            )
        except BufferError:
            return False
        except KafkaException as ex:
            metrics.FAILED.labels(self.name, "produce").inc()
            log.error("kafka collector %s: produce failed for %s: %s", self.name, event.id, ex)
            return False
        metrics.COLLECTED.labels(self.name).inc()
        self.producer.poll(0)
        return True

    @staticmethod
    def _key(event: Event, spec: str) -> bytes | None:
        if spec == "id":
            return event.id.encode()
        if spec == "none":
            return None
        section, _, name = spec.partition(".")
        value = getattr(event, section).get(name)
        return None if value is None else str(value).encode()

    def _to_spool(self, value: bytes, reason: str, sync: bool = False) -> bool:
        try:
            written = self.spool.append(value, sync=sync)
        except OSError as ex:
            self.lost += 1
            metrics.FAILED.labels(self.name, "spool_error").inc()
            log.error("kafka collector %s: spool write failed, event lost: %s", self.name, ex)
            return False
        if written:
            metrics.SPOOLED.labels(self.name, reason).inc()
            return True
        self.lost += 1
        metrics.FAILED.labels(self.name, "spool_full").inc()
        log.error(
            "kafka collector %s: spool full (%d bytes), event lost", self.name, self.spool.max_bytes
        )
        return False

    # --- delivery reports (served by the background thread) --------------------------

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self._delivered()
            return
        self._failed(err, msg.topic())
        self._to_spool(msg.value(), "delivery_failed")

    def _delivered(self) -> None:
        metrics.DELIVERED.labels(self.name).inc()
        if not self._up:
            self._set_up(True)

    def _failed(self, err: KafkaError, topic: str) -> None:
        metrics.FAILED.labels(self.name, "delivery").inc()
        log.warning("kafka collector %s: delivery to %s failed: %s", self.name, topic, err)
        self._set_up(False)

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._set_up(False)
        log.warning("kafka collector %s: %s", self.name, err)

    def _set_up(self, up: bool) -> None:
        if up != self._up:
            state = "up" if up else "down, spooling"
            log.warning("kafka collector %s: broker %s", self.name, state)
        self._up = up
        metrics.SINK_UP.labels(self.name).set(1 if up else 0)

    # --- the background thread ------------------------------------------------------------

    def _background(self) -> None:
        interval = self.options["poll_interval"]
        sync_every = self.options["spool"]["sync_interval"]
        next_sync = next_probe = 0.0
        while not self._stop.is_set():
            self.producer.poll(interval)
            now = time.monotonic()
            if now >= next_sync:
                self.spool.sync()
                self.spool.refresh()
                metrics.SPOOL_BYTES.labels(self.name).set(self.spool.size())
                next_sync = now + sync_every
            if not self._up:
                if now >= next_probe:
                    self._probe()
                    next_probe = now + self.options["probe_interval"]
            elif self.spool.active_records() or self.spool.pending():
                self._replay_one(self._stop.is_set)

    def _probe(self) -> None:
        try:
            self.producer.list_topics(timeout=1.0)
        except KafkaException:
            return
        self._set_up(True)

    def _replay_one(self, stop: Callable[[], bool]) -> bool:
        """Replay the oldest unowned segment; delete it once every record is acknowledged.

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
        batch = _Batch()
        complete = self._send_segment(segment, batch, stop)
        deadline = time.monotonic() + self.producer_config()["message.timeout.ms"] / 1000
        while not batch.settled() and time.monotonic() < deadline and not stop():
            self.producer.poll(0.1)
        if complete and batch.settled() and batch.failed == 0:
            self.spool.forget(segment)
            metrics.REPLAYED.labels(self.name).inc(batch.acked)
            log.debug(
                "kafka collector %s: replayed %d events from %s",
                self.name,
                batch.acked,
                segment.path.name,
            )
            return True
        segment.release()
        self._set_up(False)
        return False

    def _send_segment(self, segment: Segment, batch: _Batch, stop: Callable[[], bool]) -> bool:
        for payload in segment.records():
            try:
                event = Event.from_dict(json.loads(payload))
            except (ValueError, KeyError, TypeError):
                metrics.FAILED.labels(self.name, "corrupt_spool_record").inc()
                continue
            while not self._produce(event, payload, batch):
                if stop() or not self._up:
                    return False
                self.producer.poll(0.1)
            batch.sent += 1
            if stop() or not self._up:
                return False
        return True

    # --- shutdown and health ----------------------------------------------------------------

    def flush(self, timeout: float) -> int:
        """Wait for outstanding deliveries; return how many are still pending."""
        return 0 if self.producer is None else self.producer.flush(timeout)

    def close(self, timeout: float) -> int:
        """Flush within ``timeout``, spool whatever is still pending, close the spool.

        Returns:
            The number of events neither delivered nor spooled (lost).
        """
        if self.producer is None:
            return 0
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=max(1.0, timeout / 2))
        lost_before = self.lost
        deadline = time.monotonic() + timeout / 2

        # Durable events journaled in the last moments, and anything else spooled,
        # go out now if the broker answers: the spool may not outlive the pod.
        def past_deadline() -> bool:
            return time.monotonic() > deadline

        while self._up and not past_deadline() and self._replay_one(past_deadline):
            pass
        pending = self.producer.flush(max(0.0, deadline - time.monotonic()) if self._up else 0)
        if pending:
            # Their delivery reports (purged) run _on_delivery, which spools them.
            self.producer.purge(in_queue=True, in_flight=True)
            self.producer.flush(0)
            log.warning("kafka collector %s: spooled %d events at shutdown", self.name, pending)
        self.spool.close()
        self.producer = None
        return self.lost - lost_before

    def healthy(self) -> bool:
        """Return whether events can be taken: the broker is up or the spool has room."""
        return self.producer is not None and (self._up or self.spool.has_room(64 << 10))

    def status(self) -> str:
        """Describe the broker and spool state for ``/readyz``."""
        if self.producer is None:
            return "not open"
        spooled = self.spool.size()
        state = "broker up" if self._up else "broker down, spooling"
        return f"{state}; spool {spooled} of {self.spool.max_bytes} bytes"
