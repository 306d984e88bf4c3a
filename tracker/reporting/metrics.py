"""The loader's Prometheus metrics, in a registry of its own (one process, no multiprocess dir)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class LoaderMetrics:
    """What ``/metrics`` on the loader's admin port shows."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rows = Counter(
            "tracker_loader_rows_written",
            "Rows inserted into ClickHouse (a retried batch counts once)",
            ["table"],
            registry=r,
        )
        self.dead_letters = Counter(
            "tracker_loader_dead_letters",
            "Messages written to the dead-letter table, by reason",
            ["reason"],
            registry=r,
        )
        self.messages = Counter(
            "tracker_loader_messages", "Kafka messages consumed", ["topic"], registry=r
        )
        self.failures = Counter(
            "tracker_loader_insert_failures",
            "Inserts that failed and will be retried (ClickHouse unavailable)",
            registry=r,
        )
        self.lag = Gauge(
            "tracker_loader_lag",
            "Messages behind the partition's end, after the last commit",
            ["topic", "partition"],
            registry=r,
        )
        self.last_insert = Gauge(
            "tracker_loader_last_insert_timestamp_seconds",
            "When the last insert succeeded (epoch seconds; 0: none yet)",
            registry=r,
        )
        self.insert_age = Gauge(
            "tracker_loader_last_insert_age_seconds",
            "Seconds since the last successful insert or idle poll (-1: none yet)",
            registry=r,
        )
        self.insert_age.set_function(self._age)
        self.batch_seconds = Histogram(
            "tracker_loader_batch_seconds",
            "Time to insert and commit one batch",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.up_to_date = 0.0

    def inserted(self) -> None:
        """Record a successful insert (or a caught-up poll that had nothing to insert)."""
        self.up_to_date = time.time()
        self.last_insert.set(self.up_to_date)

    def _age(self) -> float:
        return time.time() - self.up_to_date if self.up_to_date else -1.0
