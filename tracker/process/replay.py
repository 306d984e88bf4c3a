"""Re-send events from spool segments or log-collector files, idempotently.

Events keep their ids, so a consumer that de-duplicates by id (or a Kafka
topic read that way) sees each event once however often it is replayed.

A spool segment (quarantined ones included) is held locked from its read until
the end of the replay, and deleted only if every event in it went to a
collector and none of those collectors counted a failure
(``tracker_collector_failures_total``), a spool write (``tracker_spooled_total``)
not made good by a replay of its spool (``tracker_replayed_total``), or a loss at
``close()`` meanwhile: each record was then delivered (or, refused for good by
Kafka once more, quarantined anew by the kafka collector). Otherwise,
and when the replay fails, it is kept for the next one. JSON-lines files are the
log collectors' records, never deleted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import tracker.metrics as metrics
from tracker.config import Config
from tracker.event import Event
from tracker.intake.filters import EventFilter
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
    deleted: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


@dataclass
class _Held:
    """A segment locked for the whole replay, and where its events went."""

    segment: Segment
    collectors: set[str] = field(default_factory=set)
    skipped: bool = False


def lock_segment(path: Path) -> Segment:
    """Lock a spool segment for replay.

    Raises:
        ReplayError: It is owned by a running writer or replayer, or gone.
    """
    segment = Segment.try_lock(path)
    if segment is None:
        raise ReplayError(f"{path}: in use by a running tracker; not replayed")
    return segment


def undelivered(collector: str) -> float:
    """Failures and spool writes ``collector`` has counted in this process, less its replays.

    A record the collector spooled (while it was starting, or the broker away)
    and then delivered from its spool before ``close()`` returned nets out.
    """

    def total(counter) -> float:
        return sum(
            sample.value
            for metric in counter.collect()
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels["collector"] == collector
        )

    return total(metrics.FAILED) + total(metrics.SPOOLED) - total(metrics.REPLAYED)


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
            run.send_file(path)
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
        self.undelivered_before: dict[str, float] = {}
        self.held: list[_Held] = []
        self.report = ReplayReport()

    def target(self, name: str) -> Collector:
        if name not in self.collectors:
            self.undelivered_before[name] = undelivered(name)
            self.collectors[name] = self.config.collectors[name].create()
            self.collectors[name].open()
        return self.collectors[name]

    def send_file(self, path: Path) -> None:
        if not path.exists():
            raise ReplayError(f"{path}: no such file (a segment deleted by an earlier replay?)")
        entry = None
        if is_segment(path):
            entry = _Held(lock_segment(path))
            self.held.append(entry)
            events = (Event.from_dict(json.loads(p)) for p in entry.segment.records())
        else:
            events = read_lines(path)
        for event in events:
            names = self.only or _path_collectors(self.config, event)
            if not names:
                self.report.skipped += 1
            for name in names:
                # The same field filter as on the request path: a replay never
                # shows a collector more than it was allowed to see.
                field_filter = self.filters.get(name)
                self.target(name).collect(field_filter(event) if field_filter else event)
                self.report.sent[name] = self.report.sent.get(name, 0) + 1
            if entry is not None:
                entry.collectors.update(names)
                entry.skipped = entry.skipped or not names

    def finish(self, timeout: float, finished: bool) -> None:
        """Close the collectors; delete the segments they all took, release the others."""
        failing = set()
        for name, collector in self.collectors.items():
            lost = collector.close(timeout)
            self.report.lost += lost
            if lost or undelivered(name) > self.undelivered_before[name]:
                failing.add(name)
        for entry in self.held:
            if finished and not entry.skipped and not entry.collectors & failing:
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
