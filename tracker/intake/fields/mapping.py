"""Map validated field values onto an event's id, dimensions and metrics.

The path's ``dimensions``, ``metrics`` and ``event_id`` references are compiled
once, at start-up, into getters over the values the path's schema loaded
(:mod:`tracker.intake.fields.schema`).
"""

from __future__ import annotations

import json
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
    # Names an encrypted token (a digest, never the token): the banker binds it to its auction.
    ("auction_price", "token"): lambda p: p.token,
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
        spec = path.event_id
        self.id_fields = spec.fields if spec else ()
        self.id_with = spec.with_ if spec else ()
        self.id_extra = spec.extra if spec else ()
        self.id_fallback = spec.fallback if spec else ()
        self.id_extra_when = spec.extra_when if spec else ()
        # The names the structured form holds besides the counted extras, each once.
        self.id_base = tuple(dict.fromkeys((*self.id_fields, *self.id_with, *self.id_fallback)))

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
        """Return the derived id, or None when the path's identity is incomplete (random then).

        A UUID 5 of a name that no two different events share (docs/event.md,
        "Event identity"). With every field of ``fields`` present, the name is
        the historical one, so a notice retried across an upgrade keeps its id:
        the event type, ``fields`` and ``with`` joined by ``\x1f`` (an absent
        ``with`` value as empty), then, only if some ``extra`` value is present,
        ``\x1e`` and a JSON object of them. That join is unambiguous only while
        no value holds ``\x1e`` or ``\x1f``; otherwise, and when ``fields`` is
        incomplete but ``fallback`` is all present, the name is ``\x1e`` and a
        JSON array of the type and an object of every present value. Historical
        names start with the type's letter, so the two forms never meet. An
        empty value counts as absent.
        """
        if not self.id_fields:
            return None
        if all(_present(values.get(n)) for n in self.id_fields):
            parts = [self.event_type]
            parts.extend(str(values[n]) for n in self.id_fields)
            parts.extend(str(values[n]) if _present(values.get(n)) else "" for n in self.id_with)
            name = "\x1f".join(parts)
            # Two C-level scans: no value holds a separator (else the join is ambiguous).
            if name.count("\x1f") == len(parts) - 1 and "\x1e" not in name:
                extra = self._extra(values)
                if extra:
                    name += "\x1e" + _json(extra)
                return name_id(EVENT_ID_NAMESPACE, name)
        elif not self.id_fallback or not all(_present(values.get(n)) for n in self.id_fallback):
            return None
        present = {n: str(values[n]) for n in self.id_base if _present(values.get(n))}
        present.update(self._extra(values))
        return name_id(EVENT_ID_NAMESPACE, "\x1e" + _json([self.event_type, present]))

    def _extra(self, values: dict[str, Any]) -> dict[str, str]:
        """The present ``extra`` values, if ``extra_when`` lets them count for this event."""
        for name, allowed in self.id_extra_when:
            if str(values.get(name)) not in allowed:
                return {}
        return {n: str(values[n]) for n in self.id_extra if _present(values.get(n))}


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _json(value: Any) -> str:
    # ASCII: any text the caller sent, even a lone surrogate, encodes for the hash.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
