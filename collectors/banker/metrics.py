"""The banker's Prometheus metrics, registered here: the core knows no collector.

What every outbox counts (pending, spooled, replayed, the sink up or down) is in
:mod:`tracker.metrics`, labelled with the banker's block name.

Under gunicorn they use prometheus_client's multiprocess mode like the core's
(``PROMETHEUS_MULTIPROC_DIR``), so ``/metrics`` sums every worker.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

FLUSH_SECONDS = Histogram(
    "tracker_banker_flush_seconds",
    "Time to apply one flush to Redis",
    ["collector"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
APPLIED = Counter(
    "tracker_banker_applied_total", "Notices whose spend was added to the ledger", ["collector"]
)
DUPLICATES = Counter(
    "tracker_banker_duplicates_total",
    "Notices refused by Redis because their id was already spent",
    ["collector"],
)
SKIPPED = Counter(
    "tracker_banker_skipped_total",
    "Events taken but not spent, by reason (audit, bot, no_campaign, currency_mismatch...)",
    ["collector", "reason"],
)
LATE = Counter(
    "tracker_banker_late_total",
    "Notices older than late_after past their auction time (spent, flagged)",
    ["collector"],
)
REDIS_ERRORS = Counter(
    "tracker_banker_redis_errors_total", "Failed flushes to Redis", ["collector"]
)
OVERSPEND = Counter(
    "tracker_banker_overspend_micros_total",
    "Spend past a cap, by cap (total or daily)",
    ["collector", "cap"],
)
EXHAUSTED = Counter(
    "tracker_banker_exhausted_total", "Caps reached and announced, by cap", ["collector", "cap"]
)
