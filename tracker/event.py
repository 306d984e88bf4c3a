"""The event envelope: what every collector receives.

The schema is documented in ``docs/event.md``; change both together.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

#: Version of the serialised envelope; bumped on any incompatible change.
SCHEMA_VERSION = 1


@dataclass(slots=True)
class Event:
    """One tracked event.

    Attributes:
        id: Unique id (UUID string); collectors use it for idempotent writes.
        type: Event type from the path's config (``impression``, ``click``...).
        received_at: Server receive time, seconds since the epoch (UTC).
        path: Name of the configured tracking path that produced the event.
        dimensions: Descriptive values (strings, booleans, integers).
        metrics: Numeric values that are summed or averaged downstream.
        context: Request context: ``ip``, ``user_agent``, ``referer``.
    """

    type: str
    path: str
    dimensions: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, int | float] = field(default_factory=dict)
    context: dict[str, str | None] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id())
    received_at: float = field(default_factory=time.time)
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the envelope as plain JSON-compatible data."""
        return {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "type": self.type,
            "path": self.path,
            "received_at": format_timestamp(self.received_at),
            "dimensions": self.dimensions,
            "metrics": self.metrics,
            "context": self.context,
        }

    def to_json(self) -> bytes:
        """Serialise the envelope as compact UTF-8 JSON.

        The result is computed once and shared by every collector that asks:
        an event is frozen once the pipeline hands it to the collectors
        (preprocessors change it before; a filtered copy is a new event).
        """
        if self._json is None:
            data = self.to_dict()
            try:
                # orjson writes the same compact UTF-8 as json.dumps here, in a
                # twentieth of the time; it refuses what it cannot represent
                # exactly (integers beyond 64 bits), which json still writes.
                self._json = orjson.dumps(data)
            except TypeError:
                self._json = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return self._json

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Rebuild an event from :meth:`to_dict` output (replay, tests)."""
        received = datetime.fromisoformat(data["received_at"].replace("Z", "+00:00"))
        return cls(
            id=data["id"],
            type=data["type"],
            path=data["path"],
            received_at=received.timestamp(),
            dimensions=dict(data.get("dimensions", {})),
            metrics=dict(data.get("metrics", {})),
            context=dict(data.get("context", {})),
        )


def new_id() -> str:
    """Return a random (version 4) UUID as its canonical lowercase string.

    The same 122 random bits from ``os.urandom`` and the same text as
    ``str(uuid.uuid4())``, without building a :class:`uuid.UUID` on the way
    (under half the time; every impression needs one or two).
    """
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def name_id(namespace: uuid.UUID, name: str) -> str:
    """Return ``str(uuid.uuid5(namespace, name))``, without the UUID objects.

    Derived event ids are computed for every ad event; the SHA-1 is the same,
    the text is set from its hex digest directly (under half the time).
    """
    h = hashlib.sha1(namespace.bytes + name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


#: The RFC 4122 variant digit (binary 10xx) for each hex digit of random bits.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}

#: The last whole second formatted, and its text: events arrive many a second.
_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def format_timestamp(epoch: float) -> str:
    """Format epoch seconds as RFC 3339 UTC with millisecond precision.

    The text is that of ``datetime.fromtimestamp(epoch, UTC).isoformat(
    timespec="milliseconds")`` with ``Z`` for ``+00:00``: the fraction is
    rounded to microseconds half-even as ``datetime`` does, then truncated to
    milliseconds. Only the seconds part goes through ``datetime``, once a second.
    """
    global _second
    fraction, whole = math.modf(epoch)
    micros = round(fraction * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    cached = _second
    if cached[0] != second:
        text = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")[:-6]
        cached = _second = (second, text)
    return f"{cached[1]}.{micros // 1000:03d}Z"
