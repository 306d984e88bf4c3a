"""Re-send events from spool segments or log-collector files, idempotently.

Events keep their ids, so a consumer that de-duplicates by id (or a Kafka
topic read that way) sees each event once however often it is replayed.

A spool segment (quarantined ones included) is held locked from its read until
the end of the replay, and deleted only if every event in it went to a
collector and every one of those collectors said, in the
:class:`~tracker.plugins.Delivery` that ``redeliver`` returns, that each event
it got from the segment was acknowledged or quarantined. A collector that
says nothing (``None``, the default of the contract) or counts a failure keeps
the segment for the next replay, whatever its metrics say. JSON-lines files
are the log collectors' records, never deleted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tracker.config import Config
from tracker.event import Event
from tracker.intake.filters import EventFilter
from tracker.plugins import Collector, Delivery
from tracker.spool import Segment, is_segment

log = logging.getLogger(__name__)

#: Events handed to each collector's ``redeliver`` at a time.
CHUNK = 1000


class ReplayError(Exception):
    """A file cannot be replayed (owned by a running process, unreadable)."""


@dataclass
class ReplayReport:
    """What a replay did."""

    sent: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    lost: int = 0
    deleted: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    #: Collectors that returned no delivery result (their segments were kept).
    silent: set[str] = field(default_factory=set)


@dataclass
class _Held:
    """A segment locked for the whole replay, and what each collector said of its events."""

    segment: Segment
    results: dict[str, Delivery | None] = field(default_factory=dict)
    skipped: bool = False

    def delivered(self) -> bool:
        """Whether every event went to a collector that says it has it."""
        if self.skipped or not self.results:
            return False
        return all(r is not None and r.complete for r in self.results.values())


def lock_segment(path: Path) -> Segment:
    """Lock a spool segment for replay.

    Raises:
        ReplayError: It is owned by a running writer or replayer, or gone.
    """
    segment = Segment.try_lock(path)
    if segment is None:
        raise ReplayError(f"{path}: in use by a running tracker; not replayed")
    return segment


def read_lines(path: Path) -> Iterator[Event]:
    """Yield the events of a JSON-lines file."""
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
    """Send every event in ``files`` to its collectors, wait, delete the segments sent.

    Args:
        config: The tracker config; it names the collectors.
        files: Spool segments or log-collector files.
        only: Collector names to send to; by default, the collectors of the
            path that produced each event.
        timeout: Seconds to wait, per collector, for outstanding deliveries.

    Raises:
        ReplayError: A file is missing or a segment in use; nothing is deleted then.
    """
    run = _Replay(config, only)
    finished = False
    try:
        for path in files:
            run.send_file(path, timeout)
        finished = True
    finally:
        run.finish(timeout, finished)
    return run.report


class _Replay:
    """One replay's collectors, held segments and report."""

    def __init__(self, config: Config, only: tuple[str, ...]) -> None:
        self.config = config
        self.only = only
        self.filters = {n: EventFilter(p.filter) for n, p in config.collectors.items() if p.filter}
        self.collectors: dict[str, Collector] = {}
        self.held: list[_Held] = []
        self.report = ReplayReport()

    def target(self, name: str) -> Collector:
        if name not in self.collectors:
            self.collectors[name] = self.config.collectors[name].create()
            self.collectors[name].open()
        return self.collectors[name]

    def send_file(self, path: Path, timeout: float) -> None:
        if not path.exists():
            raise ReplayError(f"{path}: no such file (a segment deleted by an earlier replay?)")
        entry = None
        if is_segment(path):
            entry = _Held(lock_segment(path))
            self.held.append(entry)
            events = (Event.from_dict(json.loads(p)) for p in entry.segment.records())
        else:
            events = read_lines(path)
        chunk: dict[str, list[Event]] = {}
        for i, event in enumerate(events, 1):
            names = self.only or _path_collectors(self.config, event)
            if not names:
                self.report.skipped += 1
                if entry is not None:
                    entry.skipped = True
            for name in names:
                # The same field filter as on the request path: a replay never
                # shows a collector more than it was allowed to see.
                field_filter = self.filters.get(name)
                chunk.setdefault(name, []).append(field_filter(event) if field_filter else event)
            if i % CHUNK == 0:
                self._send(chunk, entry, timeout)
                chunk = {}
        self._send(chunk, entry, timeout)

    def _send(self, chunk: dict[str, list[Event]], entry: _Held | None, timeout: float) -> None:
        """Hand each collector its events; keep what it says of them."""
        for name, events in chunk.items():
            result = self.target(name).redeliver(events, timeout)
            self.report.sent[name] = self.report.sent.get(name, 0) + len(events)
            if result is None:
                self.report.silent.add(name)
            if entry is not None:
                before = entry.results.get(name, Delivery())
                entry.results[name] = None if result is None or before is None else before + result

    def finish(self, timeout: float, finished: bool) -> None:
        """Close the collectors; delete the segments they all have, release the others."""
        for collector in self.collectors.values():
            self.report.lost += collector.close(timeout)
        for entry in self.held:
            if finished and entry.delivered():
                entry.segment.delete()
                self.report.deleted.append(entry.segment.path)
            else:
                entry.segment.release()
                self.report.kept.append(entry.segment.path)


def _path_collectors(config: Config, event: Event) -> tuple[str, ...]:
    path = config.paths.get(event.path)
    if path is None:
        log.warning("event %s: path %r is not in the config; skipped", event.id, event.path)
        return ()
    return path.collectors
