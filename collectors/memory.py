"""An in-memory collector, for tests and for trying a config out."""

from __future__ import annotations

from typing import ClassVar

from marshmallow import Schema, fields

from tracker.event import Event
from tracker.plugins import Collector


class MemoryOptions(Schema):
    """Options of the ``memory`` collector."""

    healthy = fields.Boolean(
        load_default=True, metadata={"description": "What the collector reports to `/readyz`."}
    )


class MemoryCollector(Collector):
    """Keep every event in a list, in arrival order."""

    options_schema: ClassVar = MemoryOptions

    def __init__(self, name, options):
        super().__init__(name, options)
        self.events: list[Event] = []
        self.is_healthy = options["healthy"]
        self.opened = False
        self.closed = False

    def open(self) -> None:
        """Mark the collector open."""
        self.opened = True

    def collect(self, event: Event) -> None:
        """Append the event."""
        self.events.append(event)

    def close(self, timeout: float) -> int:
        """Mark the collector closed; nothing is ever pending."""
        self.closed = True
        return 0

    def healthy(self) -> bool:
        """Return the configured health."""
        return self.is_healthy
