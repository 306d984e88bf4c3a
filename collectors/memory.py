"""An in-memory collector, for tests and for trying a config out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from marshmallow import fields

from tracker.event import Event
from tracker.plugins import Collector, Delivery, Health, Options


@dataclass(frozen=True)
class MemoryConfig:
    """The loaded options of a ``memory`` block."""

    healthy: bool


class MemoryOptions(Options):
    """Options of the ``memory`` collector."""

    model = MemoryConfig

    healthy = fields.Boolean(
        load_default=True, metadata={"description": "What the collector reports to `/readyz`."}
    )


class MemoryCollector(Collector):
    """Keep every event in a list, in arrival order."""

    options_schema: ClassVar = MemoryOptions

    def __init__(self, name: str, options: MemoryConfig) -> None:
        super().__init__(name, options)
        self.events: list[Event] = []
        self.is_healthy = options.healthy
        self.opened = False
        self.closed = False

    def open(self) -> None:
        """Mark the collector open."""
        self.opened = True

    def collect(self, event: Event) -> None:
        """Append the event."""
        self.events.append(event)

    def redeliver(self, events: list[Event], timeout: float) -> Delivery:
        """Append the events: every one is kept."""
        self.events.extend(events)
        return Delivery(acknowledged=len(events))

    def close(self, timeout: float) -> int:
        """Mark the collector closed; nothing is ever pending."""
        self.closed = True
        return 0

    def health(self) -> Health:
        """Return the configured health."""
        return Health(True) if self.is_healthy else Health(False, "unhealthy")
