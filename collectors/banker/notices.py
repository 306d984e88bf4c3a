"""Budget notices on Kafka: one message per cap reached, sent by the flusher thread.

The producer is created in :meth:`BudgetNotices.open`, after the fork, and is
only ever used from the banker's flusher thread; ``send`` never waits for the
broker (``produce`` plus ``poll(0)``). A notice is sent by the one flusher
whose Lua step crossed the cap, so two replicas never announce the same cap.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import tracker.metrics as core_metrics

from .ledger import Exhausted

log = logging.getLogger(__name__)

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 0,
    "message.timeout.ms": 300_000,
}


class BudgetNotices:
    """The ``tracker-budget`` topic of one banker, or nothing if none is configured."""

    def __init__(self, collector: str, options: Any) -> None:
        self.collector = collector
        self.options = options
        self.producer: Producer | None = None

    def setup(self, timeout: float) -> list[str]:
        """Create the budget topic if it does not exist."""
        if self.options is None:
            return []
        opts = self.options
        admin = AdminClient({"bootstrap.servers": opts.bootstrap_servers})
        topic = opts.topic
        if topic in admin.list_topics(timeout=timeout).topics:
            return [f"topic {topic} exists"]
        new = NewTopic(
            topic,
            num_partitions=opts.partitions,
            replication_factor=opts.replication_factor,
        )
        future = admin.create_topics([new], operation_timeout=timeout)[topic]
        try:
            future.result(timeout)
        except KafkaException as ex:
            if ex.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            return [f"topic {topic} exists"]
        return [f"topic {topic} created"]

    def open(self) -> None:
        """Create this worker's producer (after the fork)."""
        if self.options is not None:
            self.producer = Producer(
                {
                    **PRODUCER_DEFAULTS,
                    **self.options.producer,
                    "bootstrap.servers": self.options.bootstrap_servers,
                }
            )

    def send(self, exhausted: Exhausted) -> None:
        """Enqueue one notice, keyed by campaign; delivery is reported asynchronously."""
        if self.producer is None:
            return
        try:
            self.producer.produce(
                self.options.topic,
                value=json.dumps(exhausted.notice(), separators=(",", ":")).encode(),
                key=exhausted.campaign.encode(),
                on_delivery=self._delivered,
            )
        except (BufferError, KafkaException) as ex:
            core_metrics.FAILED.labels(self.collector, "budget_notice").inc()
            log.error("banker %s: budget notice for %s not sent: %s", self.collector, exhausted, ex)
        self.producer.poll(0)

    def _delivered(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            core_metrics.FAILED.labels(self.collector, "budget_notice").inc()
            log.error("banker %s: budget notice lost: %s", self.collector, err)

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for notices still in the producer."""
        if self.producer is not None:
            left = self.producer.flush(timeout)
            if left:
                log.error("banker %s: %d budget notices not delivered", self.collector, left)
            self.producer = None
