"""Errors Kafka will never take back: their classification, and the collector's own metric.

A record the broker refuses for good (too large for the topic, a topic that
does not exist, no authorisation) must not be retried forever in front of the
records behind it: the collector reports it refused, and the outbox keeps it in
the quarantine (:mod:`tracker.spool.quarantine`) for an operator to re-send
with ``tracker replay`` once the cause is fixed.
"""

from __future__ import annotations

from confluent_kafka import KafkaError
from prometheus_client import Counter

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
