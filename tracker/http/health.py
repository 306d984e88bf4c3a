"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

import falcon

import tracker.metrics as metrics
from tracker.intake.pipeline import Pipeline
from tracker.process import lifecycle


class HealthResource:
    """``/healthz``: the process is alive and serving."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer 200 without touching any collector."""
        resp.media = {"status": "ok"}

    # Falcon sends no body for HEAD, and keeps the headers (Content-Length too).
    on_head = on_get


class ReadyResource:
    """``/readyz``: the worker is not draining and every collector can take events."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer 200 when ready, else 503 with the reason."""
        health = self.pipeline.health()
        unhealthy = sorted(name for name, (ok, _) in health.items() if not ok)
        draining = lifecycle.DRAINING.is_set()
        if draining:
            status = "draining"
        elif unhealthy:
            status = "unavailable"
        else:
            status = "ready"
        resp.status = falcon.HTTP_200 if status == "ready" else falcon.HTTP_503
        resp.media = {
            "status": status,
            "unhealthy": unhealthy,
            "collectors": {name: state for name, (_, state) in health.items()},
        }

    on_head = on_get


class MetricsResource:
    """``/metrics``: Prometheus exposition of every worker's counters."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Render the metrics."""
        resp.data, resp.content_type = metrics.exposition()
