"""The kafka collector: set-up, the request path, delivery reports, shutdown, health."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import tracker.metrics as metrics
from collectors.kafka.background import FAILURES_BEFORE_UNREADY, PERMANENT_REASONS, Background
from collectors.kafka.faults import Quarantine, permanent_reason
from collectors.kafka.options import PRODUCER_DEFAULTS, KafkaOptions
from tracker.event import Event
from tracker.plugins import Collector
from tracker.spool import Spool

log = logging.getLogger(__name__)

#: Producer settings that the admin client of ``tracker setup`` shares.
ADMIN_PREFIXES = ("security.", "sasl.", "ssl.", "client.", "socket.")


class KafkaCollector(Background, Collector):
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
        quarantine = spool["quarantine_directory"] or Path(spool["directory"]) / "quarantine"
        self.quarantine = Quarantine(name, Path(quarantine), spool["max_bytes"])
        self.producer: Producer | None = None
        self._stop = threading.Event()  # no new turns of the background loop
        self._abandon = threading.Event()  # give up the segment being replayed
        self._poller: threading.Thread | None = None
        self._up = False
        self._why = "starting"  # why events are spooled while not up
        self._missing: list[str] | None = None  # topics missing at the last probe
        self._fatal: str | None = None
        self._fault: tuple[int, str] | None = None  # failed turns in a row, last error
        self._next_probe = self._next_sync = 0.0
        self.lost = 0

    # --- set-up ------------------------------------------------------------------

    def producer_config(self) -> dict[str, Any]:
        """Return the librdkafka settings: defaults, then the config's ``producer``."""
        return {
            **PRODUCER_DEFAULTS,
            **self.options["producer"],
            "bootstrap.servers": self.options["bootstrap_servers"],
        }

    def admin_config(self) -> dict[str, Any]:
        """Return the admin client's settings: the producer's connection and security ones.

        A managed Kafka (SASL over TLS) takes ``tracker setup`` only with the same
        ``security.*``, ``sasl.*``, ``ssl.*``, ``socket.*`` and ``client.*`` settings
        as the producer.
        """
        return {
            key: value
            for key, value in self.producer_config().items()
            if key == "bootstrap.servers" or key.startswith(ADMIN_PREFIXES)
        }

    def topics(self) -> set[str]:
        """Every topic this collector may write to."""
        return {self.default_routing[0], *(topic for topic, _ in self.routing.values())}

    def setup(self, timeout: float) -> list[str]:
        """Create the topics that do not exist yet."""
        admin = AdminClient(self.admin_config())
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
        """Open the spool, create this worker's producer and its background thread.

        Until the thread's first probe has seen the cluster and every topic,
        events are spooled (reason ``starting``), not queued to a producer that
        might hold them for a topic that does not exist.
        """
        self.spool.open()
        self.producer = Producer({**self.producer_config(), "error_cb": self._on_error})
        self._stop.clear()
        self._abandon.clear()
        self._poller = threading.Thread(
            target=self._background, name=f"kafka-{self.name}", daemon=True
        )
        self._poller.start()

    # --- the request path ------------------------------------------------------------

    def collect(self, event: Event) -> None:
        """Enqueue the event, or spool it if the producer cannot take it."""
        value = event.to_json()
        if not self._up:
            self._to_spool(value, self._why)
            return
        why = self._produce(event, value, self._on_delivery)
        if why in PERMANENT_REASONS:
            self.quarantine.put(why, value, "refused by the producer")
        elif why is not None:
            self._to_spool(value, why)

    def deliver(self, event: Event, timeout: float) -> bool:
        """Journal the event with fsync; the background thread sends it within ~0.1 s.

        Writing ahead to the spool makes the answer wait for one local fsync
        instead of a broker round trip, which would hold a meinheld worker. The
        spool's replay delivers it and deletes the segment once acknowledged,
        so there is no second copy to de-duplicate.
        """
        return self._to_spool(event.to_json(), "durable", sync=True)

    def _produce(self, event: Event, value: bytes, callback: Any) -> str | None:
        """Queue one message; return ``None``, or why not (a quarantine reason, or not)."""
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
            return "queue_full"
        except KafkaException as ex:
            metrics.FAILED.labels(self.name, "produce").inc()
            log.error("kafka collector %s: produce failed for %s: %s", self.name, event.id, ex)
            return permanent_reason(ex.args[0]) or "produce_failed"
        metrics.inc(metrics.COLLECTED, self.name)
        return None

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
            log.error("kafka collector %s: spool write failed, event not kept: %s", self.name, ex)
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
            metrics.inc(metrics.DELIVERED, self.name)
            if not self._up and self._why == "broker_down":
                self._set_up()
        elif not self._refused(err, msg.value()):
            self._failed(err, msg.topic())
            self._to_spool(msg.value(), "delivery_failed")

    def _failed(self, err: KafkaError, topic: str) -> None:
        metrics.FAILED.labels(self.name, "delivery").inc()
        log.warning("kafka collector %s: delivery to %s failed: %s", self.name, topic, err)
        if err.fatal():
            self._on_error(err)
        self._set_down("broker_down")

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            # The idempotent producer cannot go on: keep spooling, report not ready.
            self._fatal = str(err)
            log.critical("kafka collector %s: fatal producer error: %s", self.name, err)
            self._set_down("producer_fatal")
            return
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._set_down("broker_down")
        log.warning("kafka collector %s: %s", self.name, err)

    def _set_down(self, why: str) -> None:
        if self._fatal is not None:
            why = "producer_fatal"
        if self._up or why != self._why:
            log.warning("kafka collector %s: not taking events (%s), spooling", self.name, why)
        self._why = why
        self._up = False
        metrics.SINK_UP.labels(self.name).set(0)

    def _set_up(self) -> None:
        if not self._up:
            log.warning("kafka collector %s: broker up, every topic exists", self.name)
        self._up = True
        metrics.SINK_UP.labels(self.name).set(1)

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
            # A replay under way finishes first: cut short, its segment would be
            # replayed again whole, duplicating what it had already sent.
            self._poller.join(timeout=max(1.0, timeout / 2))
            self._abandon.set()
            self._poller.join(timeout=1.0)
        lost_before = self.lost
        deadline = time.monotonic() + timeout / 2
        if self._why == "starting":
            self._probe()  # closed before the thread's first probe (a short `tracker replay`)

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
        self.quarantine.seal()
        self.producer = None
        return self.lost - lost_before

    def _problem(self) -> str | None:
        """Why the collector cannot be trusted with events, or ``None``."""
        if self._fatal is not None:
            return f"fatal producer error: {self._fatal}; restart the worker"
        if self._missing:
            return f"topics missing: {', '.join(self._missing)} (run tracker setup)"
        if self._poller is not None and not self._poller.is_alive() and not self._stop.is_set():
            return "background thread stopped"
        if self._fault is not None and self._fault[0] >= FAILURES_BEFORE_UNREADY:
            return f"background thread failing: {self._fault[1]}"
        return None

    def healthy(self) -> bool:
        """Return whether events are safe here: no fault, and the broker up or spool room."""
        if self.producer is None or self._problem() is not None:
            return False
        return self._up or self.spool.has_room(64 << 10)

    def status(self) -> str:
        """Describe the broker and spool state for ``/readyz``."""
        if self.producer is None:
            return "not open"
        spooled = self.spool.size()
        state = "broker up" if self._up else f"{self._why.replace('_', ' ')}, spooling"
        problem = self._problem()
        state = f"{problem}; spooling" if problem else state
        return f"{state}; spool {spooled} of {self.spool.max_bytes} bytes"
