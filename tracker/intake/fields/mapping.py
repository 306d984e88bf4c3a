"""Map validated field values onto an event's id, dimensions and metrics.

The path's ``dimensions``, ``metrics`` and ``event_id`` references are compiled
once, at start-up, into getters over the values the path's schema loaded
(:mod:`tracker.intake.fields.schema`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tracker.adtech import openrtb
from tracker.config.model import PathConfig
from tracker.config.schemas import STRUCTURED
from tracker.event import name_id

Getter = Callable[[dict[str, Any]], Any]

_ATTRIBUTES: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("auction_price", "micros"): lambda p: (
        openrtb.impression_micros(p.cpm_micros) if p.cpm_micros is not None else None
    ),
    ("auction_price", "cpm_micros"): lambda p: p.cpm_micros,
    ("auction_price", "billable"): lambda p: p.billable,
    ("auction_price", "encrypted"): lambda p: p.encrypted,
    # 1 for a billable notice, 0 for AUDIT: a count that sums to billed impressions.
    ("auction_price", "units"): lambda p: int(p.billable),
    ("loss_reason", "code"): lambda code: code,
    ("loss_reason", "name"): openrtb.loss_reason_name,
}

#: Namespace of derived event ids (uuid5); changing it changes every derived id.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5c7d-9e0f-1a2b3c4d5e6f")


def _getter(ref: str, types: dict[str, str]) -> Getter:
    """Compile a reference (``price`` or ``price.billable``) into a value getter."""
    name, _, attr = ref.partition(".")
    kind = types[name]
    if kind not in STRUCTURED:
        return lambda values: values.get(name)
    read = _ATTRIBUTES[(kind, attr or STRUCTURED[kind][0])]

    def get(values: dict[str, Any]) -> Any:
        value = values.get(name)
        return None if value is None else read(value)

    return get


class EventMapper:
    """Map validated field values onto an event's id, dimensions and metrics.

    The references of the path's ``dimensions`` and ``metrics`` are compiled
    once, at start-up. A value that is absent (an optional field without a
    default, a non-billable price's ``micros``) is left out of the event, never
    null.
    """

    def __init__(self, path: PathConfig) -> None:
        types = {f.name: f.type for f in path.fields}
        self.event_type = path.event_type
        self.dimensions = [(dim, _getter(ref, types)) for dim, ref in path.dimensions]
        self.metrics: list[tuple[str, Getter]] = [
            (m, _getter(ref, types) if isinstance(ref, str) else (lambda values, c=ref: c))
            for m, ref in path.metrics
        ]
        self.id_fields = path.event_id.fields if path.event_id else ()
        self.id_with = path.event_id.with_ if path.event_id else ()

    def parts(self, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int | float]]:
        """Return the event's dimensions and metrics."""
        dimensions = {}
        for name, get in self.dimensions:
            value = get(values)
            if value is not None:
                dimensions[name] = value
        metrics = {}
        for name, get in self.metrics:
            value = get(values)
            if value is not None:
                metrics[name] = value
        return dimensions, metrics

    def event_id(self, values: dict[str, Any]) -> str | None:
        """Return the derived id, or None when an id field is missing (a random id then).

        The id is a UUID 5 of the event type and the fields' values, so a
        retried or duplicated notice gets the same id.
        """
        if not self.id_fields:
            return None
        parts = [self.event_type]
        for name in self.id_fields:
            value = values.get(name)
            if value is None or value == "":
                return None
            parts.append(str(value))
        parts.extend("" if values.get(name) is None else str(values[name]) for name in self.id_with)
        return name_id(EVENT_ID_NAMESPACE, "\x1f".join(parts))
