"""Errors Kafka will never take back: their classification, the quarantine, the metrics.

A record the broker refuses for good (too large for the topic, a topic that
does not exist, no authorisation) must not be retried forever in front of the
records behind it. It goes to a *quarantine*: one spool directory per reason
(``<quarantine>/<reason>/*.seg``, the spool's own format) that an operator can
inspect and re-send with ``tracker replay`` once the cause is fixed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from confluent_kafka import KafkaError
from prometheus_client import Counter

from tracker.spool import Spool

log = logging.getLogger(__name__)

QUARANTINED = Counter(
    "tracker_kafka_quarantined_total",
    "Events Kafka refused for good, moved to the quarantine, by reason",
    ["collector", "reason"],
)
THREAD_RESTARTS = Counter(
    "tracker_kafka_thread_restarts_total",
    "Times the kafka collector's background loop failed, was logged and resumed",
    ["collector"],
)
TOPICS_MISSING = Counter(
    "tracker_kafka_topics_missing_total",
    "Metadata checks that found configured topics missing",
    ["collector"],
)

#: librdkafka and broker error codes that retrying the same record cannot fix.
PERMANENT: dict[int, str] = {
    KafkaError.MSG_SIZE_TOO_LARGE: "too_large",
    KafkaError.RECORD_LIST_TOO_LARGE: "too_large",
    KafkaError.UNKNOWN_TOPIC_OR_PART: "unknown_topic",
    KafkaError._UNKNOWN_TOPIC: "unknown_topic",
    KafkaError._UNKNOWN_PARTITION: "unknown_topic",
    KafkaError.TOPIC_EXCEPTION: "invalid_topic",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "not_authorised",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "not_authorised",
    KafkaError.INVALID_RECORD: "invalid_record",
    KafkaError.POLICY_VIOLATION: "invalid_record",
}


def permanent_reason(err: KafkaError) -> str | None:
    """Return the quarantine reason for ``err``, or ``None`` if a retry may succeed.

    A fatal error is the producer's state, not the record's fault, and an
    error librdkafka flags as retriable is retried: neither is permanent.
    """
    if err.fatal() or err.retriable():
        return None
    return PERMANENT.get(err.code())


class Quarantine:
    """Dead-letter segments, one spool directory per reason."""

    def __init__(self, collector: str, directory: Path, max_bytes: int) -> None:
        """Configure; directories are created on first use.

        Args:
            collector: The collector's name, for metrics and logs.
            directory: The quarantine's root.
            max_bytes: Cap per reason.
        """
        self.collector = collector
        self.directory = directory
        self.max_bytes = max_bytes
        self._spools: dict[str, Spool] = {}

    def put(self, reason: str, value: bytes, detail: str) -> bool:
        """Keep one refused record; ``False`` if it could not be written (it is lost)."""
        spool = self._spools.get(reason)
        try:
            if spool is None:
                spool = Spool(self.directory / reason, self.max_bytes)
                spool.open()
                self._spools[reason] = spool
            written = spool.append(value)
        except OSError as ex:
            log.error(
                "kafka collector %s: quarantine write failed, event lost: %s", self.collector, ex
            )
            return False
        if not written:
            log.error("kafka collector %s: quarantine %s full, event lost", self.collector, reason)
            return False
        QUARANTINED.labels(self.collector, reason).inc()
        log.error(
            "kafka collector %s: event refused for good (%s: %s), quarantined in %s",
            self.collector,
            reason,
            detail,
            spool.directory,
        )
        return True

    def seal(self) -> None:
        """Seal what was written, so that ``tracker replay`` can take it."""
        for spool in self._spools.values():
            if spool.active_records():
                spool.seal()

    def files(self) -> list[Path]:
        """The quarantined segments on disk."""
        return sorted(self.directory.glob("*/*.seg"))
