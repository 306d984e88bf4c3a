"""The ``kafka`` collector: one confluent-kafka producer per worker, behind an outbox.

The producer is created in :meth:`KafkaCollector.connect`, after gunicorn forks
the worker (librdkafka's threads do not survive a fork). ``collect`` only
queues the event in the collector's outbox (:mod:`tracker.spool.outbox`); the
outbox's thread produces the queued events in batches and serves the delivery
reports, so a request never waits on the broker, nor polls or flushes.

Nothing accepted is dropped: an event the producer cannot take (queue full,
broker down, topics missing) or fails to deliver is retried or goes to the
collector's durable spool, replayed oldest first once the broker answers
again. Events of ``durable`` paths are written ahead to the spool with fsync
and sent by the same replay, continuously. An event Kafka refuses for good goes
to the quarantine instead of blocking the rest.

Modules: ``options`` (config schema and its frozen model, producer defaults),
``collector`` (the sink: produce a batch, report each record, probe the
cluster), ``faults`` (which errors are permanent, the collector's metric).
"""

from collectors.kafka.collector import KafkaCollector
from collectors.kafka.options import PRODUCER_DEFAULTS

__all__ = ["PRODUCER_DEFAULTS", "KafkaCollector"]
