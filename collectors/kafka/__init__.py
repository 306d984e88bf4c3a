"""The ``kafka`` collector: one confluent-kafka producer per worker, backed by a spool.

The producer is created in :meth:`KafkaCollector.open`, after gunicorn forks
the worker (librdkafka's threads do not survive a fork). ``collect`` only
enqueues (``produce``, no ``poll``: a ``poll(0)`` per event released and
re-took the GIL on the request thread); a background thread
(:mod:`collectors.kafka.background`) serves delivery reports, so a request
never waits on the broker.

Nothing accepted is dropped: an event the producer cannot take (queue full,
broker down, topics missing) or fails to deliver goes to the collector's
durable spool (:mod:`tracker.spool`), and the background thread replays the
spool, oldest first, once the broker answers again. While the broker is down,
new events go straight to the spool, so the producer's memory stays bounded.
Events of ``durable`` paths are written ahead to the spool with fsync and sent
by the same replay, continuously. An event Kafka refuses for good goes to the
quarantine (:mod:`collectors.kafka.faults`) instead of blocking the rest.

Modules: ``options`` (config schema, producer defaults), ``collector`` (the
request path, delivery reports, health), ``background`` (the supervised
thread), ``faults`` (error classes, quarantine, the collector's metrics).
"""

from collectors.kafka.collector import KafkaCollector
from collectors.kafka.options import PRODUCER_DEFAULTS

__all__ = ["PRODUCER_DEFAULTS", "KafkaCollector"]
