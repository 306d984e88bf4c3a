"""The event envelope: what every collector receives.

The schema is documented in ``docs/event.md``; change both together.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
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
            self._json = json.dumps(
                self.to_dict(), separators=(",", ":"), ensure_ascii=False
            ).encode()
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


def format_timestamp(epoch: float) -> str:
    """Format epoch seconds as RFC 3339 UTC with millisecond precision."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
