"""The kafka collector: set-up, sending a batch and its delivery reports, probes, health."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import tracker.metrics as metrics
from collectors.kafka.faults import TOPICS_MISSING, permanent_reason
from collectors.kafka.options import PRODUCER_DEFAULTS, KafkaConfig, KafkaOptions
from tracker.event import Event
from tracker.spool import OutboxCollector, Report

log = logging.getLogger(__name__)

#: Producer settings that the admin client of ``tracker setup`` shares.
ADMIN_PREFIXES = ("security.", "sasl.", "ssl.", "client.", "socket.")


class KafkaCollector(OutboxCollector):
    """Produce each event as JSON to a topic chosen by its type.

    The message key is the event id by default (so a replay lands on the same
    partition), or a dimension such as the campaign id; the message timestamp
    is the event's receive time.
    """

    options_schema: ClassVar = KafkaOptions
    sink_noun = "broker"

    def __init__(self, name: str, options: KafkaConfig) -> None:
        super().__init__(name, options)
        self.routing = {t: (r.topic, r.key) for t, r in options.events.items()}
        self.default_routing = (options.topic, options.key)
        spool = options.spool
        # Until the first probe has seen the cluster and every topic, events are
        # spooled (reason `starting`), not queued for a topic that might not exist.
        self.make_outbox(
            spool,
            interval=options.poll_interval,
            max_pending=options.max_pending,
            backoff=(options.probe_interval, options.probe_interval),
            sync_interval=spool.sync_interval,
            quarantine_directory=spool.quarantine_directory,
            start_up=False,
        )
        self.producer: Producer | None = None
        self._missing: list[str] | None = None  # topics missing at the last probe
        self._fatal: str | None = None

    # --- set-up ------------------------------------------------------------------

    def producer_config(self) -> dict[str, Any]:
        """Return the librdkafka settings: defaults, then the config's ``producer``."""
        return {
            **PRODUCER_DEFAULTS,
            **self.options.producer,
            "bootstrap.servers": self.options.bootstrap_servers,
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
        settings = self.options.topics
        report = [f"topic {t} exists" for t in sorted(self.topics() & existing)]
        wanted = sorted(self.topics() - existing)
        if not wanted:
            return report
        new = [
            NewTopic(
                t,
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                config=dict(settings.config),
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

    # --- the sink --------------------------------------------------------------------------

    def connect(self) -> None:
        """Create this worker's producer (after the fork)."""
        self.producer = Producer({**self.producer_config(), "error_cb": self._on_error})
        self._missing = self._fatal = None

    def send(self, records: list[Event], report: Report) -> None:
        """Queue each event to the producer; its delivery report settles it later."""
        producer = self.producer

        def reported(err: KafkaError | None, msg: Any) -> None:
            # One callback per batch, not per record: the failed record is read
            # back from the message, which only a failure needs.
            if err is None:
                report.ack()
            else:
                self._failed(report, err, msg)

        for event in records:
            topic, key_spec = self.routing.get(event.type, self.default_routing)
            try:
                producer.produce(
                    topic,
                    value=event.to_json(),
                    key=self._key(event, key_spec),
                    timestamp=int(event.received_at * 1000),
                    on_delivery=reported,
                )
            except BufferError:
                report.retry(event, "queue_full")
            except KafkaException as ex:
                reason = permanent_reason(ex.args[0])
                if reason is not None:
                    report.refuse(event, reason, f"refused by the producer: {ex}")
                    continue
                metrics.FAILED.labels(self.name, "produce").inc()
                log.error("kafka collector %s: produce failed for %s: %s", self.name, event.id, ex)
                report.retry(event, "produce_failed")

    @staticmethod
    def _key(event: Event, spec: str) -> bytes | None:
        if spec == "id":
            return event.id.encode()
        if spec == "none":
            return None
        section, _, name = spec.partition(".")
        value = getattr(event, section).get(name)
        return None if value is None else str(value).encode()

    def _failed(self, report: Report, err: KafkaError, msg: Any) -> None:
        event = self.decode(msg.value())
        reason = permanent_reason(err)
        if reason is not None:
            report.refuse(event, reason, str(err))
            return
        metrics.FAILED.labels(self.name, "delivery").inc()
        log.warning("kafka collector %s: delivery to %s failed: %s", self.name, msg.topic(), err)
        if err.fatal():
            self._on_error(err)
        report.retry(event, "delivery_failed")
        self.outbox.set_down("producer_fatal" if self._fatal else "broker_down")

    def poll(self, timeout: float) -> None:
        """Serve delivery reports (on the outbox's thread, never in a request)."""
        self.producer.poll(timeout)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            # The idempotent producer cannot go on: keep spooling, report not ready.
            self._fatal = str(err)
            log.critical("kafka collector %s: fatal producer error: %s", self.name, err)
            self.outbox.set_down("producer_fatal")
            return
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.outbox.set_down("broker_down")
        log.warning("kafka collector %s: %s", self.name, err)

    def probe(self) -> str | None:
        """Ask the cluster for its topics: is it up, and does every topic exist?"""
        if self._fatal is not None:
            return "producer_fatal"
        try:
            existing = set(self.producer.list_topics(timeout=1.0).topics)
        except KafkaException:
            return "broker_down"
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
            return "topics_missing"
        return None

    def problem(self) -> str | None:
        """Why the collector cannot be trusted with events, or ``None``."""
        if self._fatal is not None:
            return f"fatal producer error: {self._fatal}; restart the worker"
        if self._missing:
            return f"topics missing: {', '.join(self._missing)} (run tracker setup)"
        return None

    def disconnect(self, timeout: float) -> None:
        """Wait for outstanding deliveries while the broker is up; hand the rest back."""
        if self.producer is None:
            return
        pending = self.producer.flush(timeout if self.outbox.up else 0)
        if pending:
            # Their delivery reports (purged) come back as retries, which the outbox spools.
            self.producer.purge(in_queue=True, in_flight=True)
            self.producer.flush(0)
            log.warning("kafka collector %s: spooled %d events at shutdown", self.name, pending)
        self.producer = None
