"""Prometheus metrics shared by the core and the collectors.

Under gunicorn each worker is its own process, so the counters use
prometheus_client's multiprocess mode: ``config/gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` before anything imports this module, and
``/metrics`` aggregates every worker's files. Without that variable (unit
tests, ``tracker`` CLI) the counters are plain in-process ones.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.metrics import MetricWrapperBase

REQUESTS = Counter(
    "tracker_requests_total", "Tracking requests by path and outcome", ["path", "outcome"]
)
REJECTED = Counter(
    "tracker_rejected_total", "Rejected requests by path and reason", ["path", "reason"]
)
REJECTED_CAPPED = Counter(
    "tracker_rejected_stream_capped_total",
    "Sampled refusals left out of the rejected-requests stream by its per-second cap",
    ["path"],
)
REJECTED_LATE = Counter(
    "tracker_rejected_late_total",
    "Events a collector refused after their request was answered (the banker's ledger step)",
    ["path", "reason"],
)
EVENTS = Counter("tracker_events_total", "Events handed to collectors", ["event_type"])
DROPPED = Counter(
    "tracker_events_dropped_total", "Events dropped by a preprocessor", ["preprocessor"]
)
ENRICH_FAILURES = Counter(
    "tracker_enrichment_failures_total",
    "Events an enriching preprocessor (user_agent, geoip) could not fully enrich, by kind",
    ["preprocessor", "kind"],
)
COLLECTED = Counter(
    "tracker_collector_events_total", "Events accepted by a collector", ["collector"]
)
DELIVERED = Counter(
    "tracker_collector_delivered_total", "Events confirmed delivered by a collector", ["collector"]
)
FAILED = Counter(
    "tracker_collector_failures_total",
    "Events a collector failed to take or deliver, by reason",
    ["collector", "reason"],
)

SPOOLED = Counter(
    "tracker_spooled_total",
    "Events written to a collector's durable spool",
    ["collector", "reason"],
)
REPLAYED = Counter("tracker_replayed_total", "Spooled events delivered on replay", ["collector"])
SPOOL_BYTES = Gauge(
    "tracker_spool_bytes",
    "Bytes in a collector's spool directory",
    ["collector"],
    multiprocess_mode="livemax",
)
SPOOL_AGE = Gauge(
    "tracker_spool_oldest_age_seconds",
    "Age of the oldest record in a collector's spool directory (0 when empty); "
    "it grows while replay is stalled",
    ["collector"],
    multiprocess_mode="livemax",
)
SPOOL_DAMAGED = Counter(
    "tracker_spool_damaged_total",
    "Damaged stretches (torn or corrupt records, missing headers) skipped on replay",
    ["collector"],
)
QUARANTINED = Counter(
    "tracker_quarantined_total",
    "Events a collector's sink refused for good, moved to its quarantine, by reason",
    ["collector", "reason"],
)
PENDING = Gauge(
    "tracker_collector_pending_events",
    "Events an outbox holds in memory or in flight, not yet acknowledged (all workers)",
    ["collector"],
    multiprocess_mode="livesum",
)
THREAD_RESTARTS = Counter(
    "tracker_outbox_restarts_total",
    "Times a collector's outbox loop failed, was logged and resumed",
    ["collector"],
)
SINK_UP = Gauge(
    "tracker_collector_up",
    "1 while a collector's sink takes events, 0 while it is down (per worker)",
    ["collector"],
    multiprocess_mode="livemin",
)


_CHILDREN: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}


def inc(metric: MetricWrapperBase, *labels: str, amount: float = 1) -> None:
    """Add ``amount`` to the child of ``metric`` with ``labels``.

    ``metric.labels(...)`` validates and converts every label value under a
    lock on each call, about three times the cost of the increment itself;
    the child is looked up there once and then reused from a plain dict.
    Prefer this to ``metric.labels(...).inc()`` on the request path.
    """
    key = (metric, labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    child.inc(amount)


def exposition() -> tuple[bytes, str]:
    """Render every metric of this process, or of all workers under gunicorn."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = DEFAULT_REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
