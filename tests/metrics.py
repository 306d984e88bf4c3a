"""Read the tracker's metrics as a scrape sees them, through prometheus_client's public API."""

from __future__ import annotations

from prometheus_client import REGISTRY


def counted(sample: str, **labels: str) -> float:
    """Return a sample as ``/metrics`` names it (``tracker_rejected_total``), 0 if never set."""
    return REGISTRY.get_sample_value(sample, labels) or 0.0
