"""Refusals, in one home: :class:`Rejected`, their counting, and the rejected-requests stream.

:class:`Rejected` is what any stage raises for a request (or batch item) that
cannot become an event; :func:`count_rejection` counts it, by path and reason,
wherever it is answered.

The rejected-requests stream keeps sampled, capped copies of refusals, like
Snowplow's bad rows. Each refusal the HTTP layer answers is offered to
:class:`RejectedStream`, which keeps it with the configured probability and
at most the configured number per second (per worker), and hands it as a
``rejected`` event to its own collector route, by default the Kafka topic
``tracker-rejected``. The request copy is built only for a kept refusal, by
the caller's function, so a flood of bad requests costs one random draw each.
Collectors' ``collect()`` never blocks, so the stream adds no wait to the
request path. Nothing here knows HTTP.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import Any

import tracker.metrics as metrics
from tracker.config import DeliveryConfig, RejectedConfig
from tracker.event import Event
from tracker.intake.pipeline import Pipeline
from tracker.plugins import Refused

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: The path label of refusals that happen before a request reaches a path.
REQUEST_LABEL = "_request"
#: The ``status`` of a record a collector refused after the request was taken.
LATE_STATUS = 202


class Rejected(Exception):
    """A request (or batch item) that cannot become an event.

    Attributes:
        status: HTTP status code to answer with (400, 413...).
        reason: Short machine-friendly reason, also the metrics label.
        description: Human-readable explanation.
        errors: Per-field messages, for validation failures.
        retry_after: Seconds after which to try again (a 429), else None.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        description: str,
        errors: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.reason = reason
        self.description = description
        self.errors = errors or {}
        self.retry_after = retry_after

    def summary(self) -> str:
        """Summarise the rejection in one line of printable ASCII, at most 512 characters.

        Pixel paths put it in a header, and field errors may quote the caller's
        input: WSGI header values must be Latin-1 and hold no line break, so
        everything else is backslash-escaped (``\\u20ac`` for a euro sign, ``\\x0d`` for a CR).
        """
        if self.errors:
            text = "; ".join(
                f"{k}: {' '.join(map(str, v))}" for k, v in sorted(self.errors.items())
            )
        else:
            text = self.description
        line = f"{self.reason}: {text}"
        if not line.isascii():
            line = line.encode("ascii", "backslashreplace").decode("ascii")
        if not line.isprintable():
            line = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line)
        return line[:512]


def count_rejection(path: str, reason: str) -> None:
    """Count one refusal of ``path`` (or :data:`REQUEST_LABEL`) for ``reason``."""
    metrics.inc(metrics.REQUESTS, path, "rejected")
    metrics.inc(metrics.REJECTED, path, reason)


#: The event type of the stream's events.
EVENT_TYPE = "rejected"
_FAST = DeliveryConfig(mode="fast", timeout=5.0, retry_after=5)


class RejectedStream:
    """Turn sampled refusals into ``rejected`` events for the stream's collectors."""

    def __init__(
        self,
        config: RejectedConfig,
        pipeline: Pipeline,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.route = pipeline.route((), config.collectors, _FAST)
        self.pipeline = pipeline
        self.clock = clock
        self.draw = draw
        self._second = -1
        self._sent = 0

    def offer(
        self, path: str, rejected: Rejected, request: Callable[[int], dict[str, Any]]
    ) -> bool:
        """Send the refusal of ``path`` to the stream if the sample and the cap allow.

        Args:
            path: The path's name, or ``_request`` before routing.
            rejected: The refusal.
            request: Builds the privacy-safe request copy, values cut to the
                given length; called only when the refusal is kept.

        Returns:
            Whether the refusal was sent.
        """
        if self.draw() >= self.config.sample_rate:
            return False
        second = int(self.clock())
        if second != self._second:
            self._second, self._sent = second, 0
        if self._sent >= self.config.max_per_second:
            metrics.inc(metrics.REJECTED_CAPPED, path)
            return False
        self._sent += 1
        event = Event(
            type=EVENT_TYPE,
            path=path,
            dimensions={
                "status": rejected.status,
                "reason": rejected.reason,
                "description": rejected.description,
                "errors": rejected.errors,
                "request": request(self.config.max_value_length),
            },
        )
        self.pipeline.dispatch(self.route, event)
        return True

    def offer_late(self, path: str, refused: Refused, fields: dict[str, Any]) -> bool:
        """Send a refusal a collector decided after the answer (:meth:`Collector.late_refusal`).

        Sampled and capped like any refusal; the record's ``status`` is 202 (the
        request was taken) and its ``request`` holds only the collector's ``fields``.
        """
        metrics.inc(metrics.REJECTED_LATE, path, refused.reason)
        rejected = Rejected(LATE_STATUS, refused.reason, refused.description)
        return self.offer(path, rejected, lambda n: {k: str(v)[:n] for k, v in fields.items()})
