"""Re-send events from spool segments or log-collector files, idempotently.

Events keep their ids, so a consumer that de-duplicates by id (or a Kafka
topic read that way) sees each event once however often it is replayed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tracker.config import Config
from tracker.event import Event
from tracker.filters import EventFilter
from tracker.plugins import Collector
from tracker.spool import Segment, is_segment

log = logging.getLogger(__name__)


class ReplayError(Exception):
    """A file cannot be replayed (owned by a running process, unreadable)."""


@dataclass
class ReplayReport:
    """What a replay did."""

    sent: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    lost: int = 0


def read_events(path: Path) -> Iterator[Event]:
    """Yield the events of a spool segment or a JSON-lines file.

    Raises:
        ReplayError: A spool segment is owned by a running writer or replayer.
    """
    if is_segment(path):
        segment = Segment.try_lock(path)
        if segment is None:
            raise ReplayError(f"{path}: in use by a running tracker; not replayed")
        try:
            for payload in segment.records():
                yield Event.from_dict(json.loads(payload))
        finally:
            segment.release()
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield Event.from_dict(json.loads(line))


def replay(
    config: Config,
    files: list[Path],
    only: tuple[str, ...] = (),
    timeout: float = 30.0,
) -> ReplayReport:
    """Send every event in ``files`` to its collectors and wait for delivery.

    Args:
        config: The tracker config; it names the collectors.
        files: Spool segments or log-collector files.
        only: Collector names to send to; by default, the collectors of the
            path that produced each event.
        timeout: Seconds to wait, per collector, for outstanding deliveries.
    """
    collectors: dict[str, Collector] = {}
    filters = {n: EventFilter(p.filter) for n, p in config.collectors.items() if p.filter}
    report = ReplayReport()

    def target(name: str) -> Collector:
        if name not in collectors:
            collectors[name] = config.collectors[name].create()
            collectors[name].open()
        return collectors[name]

    try:
        for path in files:
            for event in read_events(path):
                names = only or _path_collectors(config, event)
                if not names:
                    report.skipped += 1
                    continue
                for name in names:
                    # The same field filter as on the request path: a replay never
                    # shows a collector more than it was allowed to see.
                    field_filter = filters.get(name)
                    target(name).collect(field_filter(event) if field_filter else event)
                    report.sent[name] = report.sent.get(name, 0) + 1
    finally:
        for collector in collectors.values():
            report.lost += collector.close(timeout)
    return report


def _path_collectors(config: Config, event: Event) -> tuple[str, ...]:
    path = config.paths.get(event.path)
    if path is None:
        log.warning("event %s: path %r is not in the config; skipped", event.id, event.path)
        return ()
    return path.collectors
