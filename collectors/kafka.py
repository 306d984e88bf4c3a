"""The ``kafka`` collector: one confluent-kafka producer per worker.

The producer is created in :meth:`KafkaCollector.open`, after gunicorn forks
the worker (librdkafka's threads do not survive a fork). ``collect`` only
enqueues: ``produce`` plus a non-blocking ``poll(0)``; a background thread
serves delivery reports, so a request never waits on the broker.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from marshmallow import Schema, ValidationError, fields, validate, validates

from tracker import metrics
from tracker.event import Event
from tracker.plugins import Collector

log = logging.getLogger(__name__)

#: Producer settings that favour no loss and no duplicates; config overrides them.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 100_000,
    "queue.buffering.max.kbytes": 65_536,
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
    poll_interval = fields.Float(load_default=0.1, validate=validate.Range(min=0.001, max=5))

    @validates("producer")
    def _no_bootstrap(self, value: dict, **kwargs: Any) -> None:
        if "bootstrap.servers" in value:
            raise ValidationError("Set bootstrap_servers, not producer.bootstrap.servers.")


class KafkaCollector(Collector):
    """Produce each event as JSON to a topic chosen by its type.

    The message key is the event id by default (so a replay lands on the same
    partition), or a dimension such as the campaign id; the message timestamp
    is the event's receive time.
    """

    options_schema: ClassVar = KafkaOptions

    def __init__(self, name, options):
        super().__init__(name, options)
        default = (options["topic"], options["key"])
        self.routing = {t: (r["topic"], r["key"]) for t, r in options["events"].items()}
        self.default_routing = default
        self.producer: Producer | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._brokers_down = False

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
        wanted = sorted(self.topics() - existing)
        report = [f"topic {t} exists" for t in sorted(self.topics() & existing)]
        if not wanted:
            return report
        futures = admin.create_topics(
            [
                NewTopic(
                    t,
                    num_partitions=settings["partitions"],
                    replication_factor=settings["replication_factor"],
                    config=settings["config"],
                )
                for t in wanted
            ],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
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
        """Create this worker's producer and its delivery-report thread."""
        config = {**self.producer_config(), "error_cb": self._on_error}
        self.producer = Producer(config)
        self._stop.clear()
        self._poller = threading.Thread(
            target=self._poll_loop, name=f"kafka-poll-{self.name}", daemon=True
        )
        self._poller.start()

    def _poll_loop(self) -> None:
        interval = self.options["poll_interval"]
        while not self._stop.is_set():
            self.producer.poll(interval)

    def collect(self, event: Event) -> None:
        """Enqueue the event; never waits for the broker."""
        topic, key_spec = self.routing.get(event.type, self.default_routing)
        try:
            self.producer.produce(
                topic,
                value=event.to_json(),
                key=self._key(event, key_spec),
                timestamp=int(event.received_at * 1000),
                on_delivery=self._on_delivery,
            )
        except BufferError:
            metrics.FAILED.labels(self.name, "queue_full").inc()
            log.error("kafka collector %s: local queue full, event %s lost", self.name, event.id)
            return
        except KafkaException as ex:
            metrics.FAILED.labels(self.name, "produce").inc()
            log.error("kafka collector %s: produce failed for %s: %s", self.name, event.id, ex)
            return
        metrics.COLLECTED.labels(self.name).inc()
        self.producer.poll(0)

    @staticmethod
    def _key(event: Event, spec: str) -> bytes | None:
        if spec == "id":
            return event.id.encode()
        if spec == "none":
            return None
        section, _, name = spec.partition(".")
        value = getattr(event, section).get(name)
        return None if value is None else str(value).encode()

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self._brokers_down = False
            metrics.DELIVERED.labels(self.name).inc()
            return
        metrics.FAILED.labels(self.name, "delivery").inc()
        log.error("kafka collector %s: delivery to %s failed: %s", self.name, msg.topic(), err)

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = True
        log.warning("kafka collector %s: %s", self.name, err)

    def flush(self, timeout: float) -> int:
        """Wait for outstanding deliveries; return how many are still pending."""
        return 0 if self.producer is None else self.producer.flush(timeout)

    def close(self, timeout: float) -> int:
        """Stop the poller and flush; return how many events were not delivered."""
        if self.producer is None:
            return 0
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=1.0)
        pending = self.producer.flush(timeout)
        if pending:
            metrics.FAILED.labels(self.name, "shutdown").inc(pending)
            log.error("kafka collector %s: %d events undelivered at shutdown", self.name, pending)
        self.producer = None
        return pending

    def healthy(self) -> bool:
        """Return ``False`` while librdkafka reports every broker down."""
        return self.producer is not None and not self._brokers_down
