"""Per-collector field filters: what a collector may see of an event.

A collector that shares data with third parties gets ``allow_fields`` (only
what is listed) or ``deny_fields`` (all but what is listed) in its config
block. Names are ``dimensions``, ``metrics`` or ``context``, whole or one key
(``context.ip``, ``dimensions.user_id``). The envelope (id, type, path,
receive time) is always kept. The filtered event is a copy; other collectors
still get the whole event.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tracker.config.model import FieldFilter
from tracker.event import Event


class EventFilter:
    """A compiled :class:`~tracker.config.FieldFilter`."""

    def __init__(self, spec: FieldFilter) -> None:
        self.allow = spec.mode == "allow"
        self.whole = {n for n in spec.names if "." not in n}
        self.keys: dict[str, set[str]] = {}
        for name in spec.names:
            section, _, key = name.partition(".")
            if key:
                self.keys.setdefault(section, set()).add(key)

    def __call__(self, event: Event) -> Event:
        """Return a copy of ``event`` with only what the collector may see."""
        return dataclasses.replace(
            event,
            dimensions=self._section("dimensions", event.dimensions),
            metrics=self._section("metrics", event.metrics),
            context=self._section("context", event.context),
        )

    def _section(self, section: str, values: dict[str, Any]) -> dict[str, Any]:
        named = self.keys.get(section, set())
        if self.allow:
            if section in self.whole:
                return dict(values)
            return {k: v for k, v in values.items() if k in named}
        if section in self.whole:
            return {}
        return {k: v for k, v in values.items() if k not in named}
