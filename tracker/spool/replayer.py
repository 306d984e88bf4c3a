"""Spool replay for the outbox: one segment at a time, deleted only on a complete delivery."""

from __future__ import annotations

import logging
from typing import Any

import tracker.metrics as metrics
from tracker.plugins import Delivery
from tracker.spool.batch import Report
from tracker.spool.records import Segment

log = logging.getLogger(__name__)


class Replayer:
    """The segment an outbox is replaying, sent in batches across the loop's turns.

    The segment stays locked while its records go out. Records the sink wants
    again are re-sent (after a probe, if the sink went down); a damaged stretch
    is skipped and counted. Its :class:`~tracker.plugins.Delivery` decides:
    complete (every intact record acknowledged or quarantined), the segment is
    deleted; otherwise it is released whole for a later replay.
    """

    def __init__(self, outbox: Any) -> None:
        self.outbox = outbox
        self.segment: Segment | None = None
        self._payloads: Any = None
        self._report: Report | None = None
        self._again: list[Any] = []
        self._acked = self._refused = self._lost = 0

    def busy(self) -> bool:
        """Whether a batch of the segment awaits the sink's reports."""
        return self._report is not None and self._report.unsettled() > 0

    def waiting(self) -> bool:
        """Whether a segment is held or the spool has one to replay."""
        spool = self.outbox.spool
        return self.segment is not None or spool.active_records() or spool.pending()

    def step(self) -> None:
        """Start a segment, or send its next batch once the last one is settled."""
        if not self.outbox.up:
            return  # went down this turn: the segment (if any) stays locked until it is back
        spool = self.outbox.spool
        if self.segment is None:
            if spool.active_records():
                spool.seal()
            segment = spool.claim()
            if segment is None:
                return
            self.segment, self._payloads = segment, segment.records()
        if self._report is not None:
            if self._report.unsettled():
                return
            self._absorb(self._report)
        if self._lost:
            self.release()  # a refused record the quarantine could not keep stays here
            return
        batch = self._next_batch()
        if batch:
            self._report = self.outbox.send(batch)
        else:
            self._finish()

    def _absorb(self, report: Report) -> None:
        self._report = None
        self._acked += report.acked
        self._refused += report.refused
        self._lost += report.lost
        self._again.extend(record for record, _ in report.retried)
        self.outbox.acknowledged(report.acked)

    def _next_batch(self) -> list[Any]:
        size = self.outbox.batch_size
        batch, self._again = self._again[:size], self._again[size:]
        decode = self.outbox.sink.decode
        while len(batch) < size and (payload := next(self._payloads, None)) is not None:
            try:
                batch.append(decode(payload))
            except (ValueError, KeyError, TypeError):
                metrics.FAILED.labels(self.outbox.name, "corrupt_spool_record").inc()
        return batch

    def _finish(self) -> None:
        segment = self.segment
        delivery = Delivery(self._acked, self._refused, self._lost)
        name = self.outbox.name
        damage = segment.damage
        if damage.regions:
            metrics.SPOOL_DAMAGED.labels(name).inc(damage.regions)
            log.error(
                "collector %s: %s: skipped %d damaged stretch(es), %d bytes%s; "
                "every intact record was delivered",
                name,
                segment.path.name,
                damage.regions,
                damage.bytes,
                "" if damage.header else " (no segment header)",
            )
        self._close_reader()
        self.outbox.spool.forget(segment)
        metrics.REPLAYED.labels(name).inc(delivery.acknowledged)
        log.info("collector %s: replayed %s: %s", name, segment.path.name, delivery)
        self._reset()

    def release(self) -> None:
        """Give the segment back whole, for a later replay (by this or another worker)."""
        if self.segment is not None:
            self._close_reader()
            self.segment.release()
            self._reset()

    def _close_reader(self) -> None:
        if self._report is not None:
            self._report.closed = True
        self._payloads.close()

    def _reset(self) -> None:
        self.segment = self._payloads = self._report = None
        self._again = []
        self._acked = self._refused = self._lost = 0
