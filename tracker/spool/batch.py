"""What became of a batch: the sink's report of each record, and a caller's ticket."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from tracker.plugins import Delivery


class Report:
    """The sink's account of one batch: each record acknowledged, refused or to retry.

    A sink reports every record of ``records`` once, before ``send`` returns or
    later from ``poll``. The outbox reads the report once it is settled.

    Attributes:
        records: The batch, as given to ``send``.
        acked: Records the sink acknowledged.
        refused: Records refused for good and quarantined.
        lost: Records refused for good that the quarantine could not keep.
        retried: ``(record, reason)`` of the records the sink must see again.
    """

    __slots__ = ("_quarantine", "acked", "closed", "lost", "records", "refused", "retried")

    def __init__(self, records: list[Any], quarantine: Callable[[Any, str, str], bool]) -> None:
        self.records = records
        self.acked = 0
        self.refused = 0
        self.lost = 0
        self.retried: list[tuple[Any, str]] = []
        self._quarantine = quarantine
        self.closed = False  # given up on: late reports change nothing

    def ack(self, count: int = 1) -> None:
        """Count ``count`` records acknowledged by the sink."""
        if not self.closed:
            self.acked += count

    def refuse(self, record: Any, reason: str, detail: str = "") -> None:
        """Quarantine ``record``: the sink will never take it (``reason`` names the directory)."""
        if self.closed:
            return
        if self._quarantine(record, reason, detail):
            self.refused += 1
        else:
            self.lost += 1

    def retry(self, record: Any, reason: str) -> None:
        """Keep ``record`` for another try (``reason`` labels it if it is spooled)."""
        if not self.closed:
            self.retried.append((record, reason))

    def unsettled(self) -> int:
        """Records not reported yet."""
        return len(self.records) - self.acked - self.refused - self.lost - len(self.retried)


class Ticket:
    """Records a caller handed to the outbox, and what became of them (``tracker replay``)."""

    def __init__(self, records: list[Any], skipped: int) -> None:
        self.records = records
        self.report: Report | None = None
        self.delivery = Delivery(acknowledged=skipped)
        self._done = threading.Event()

    def settle(self, acked: int, refused: int, failed: int) -> None:
        """Record the outcome; the waiting caller returns."""
        self.delivery = Delivery(
            self.delivery.acknowledged + acked, refused, self.delivery.failed + failed
        )
        self._done.set()

    def wait(self, timeout: float) -> Delivery:
        """Wait up to ``timeout`` s; what is not settled by then counts as failed."""
        if self._done.wait(timeout):
            return self.delivery
        report = self.report
        acked = report.acked if report else 0
        refused = report.refused if report else 0
        return Delivery(
            self.delivery.acknowledged + acked, refused, len(self.records) - acked - refused
        )


class Tickets:
    """The tickets an outbox was handed: waiting for the loop, or sent."""

    def __init__(self) -> None:
        self.waiting: deque[Ticket] = deque()
        self.sent: list[Ticket] = []

    def submit(self, records: list[Any], skipped: int) -> Ticket:
        """Queue ``records`` for the loop (called from any thread)."""
        ticket = Ticket(records, skipped)
        if records:
            self.waiting.append(ticket)
        else:
            ticket.settle(0, 0, 0)
        return ticket

    def busy(self) -> bool:
        """Whether a ticket is waiting or in flight."""
        return bool(self.waiting or self.sent)

    def send(self, outbox: Any) -> None:
        """Send the waiting tickets' records while the sink is up."""
        while self.waiting and outbox.up:
            ticket = self.waiting.popleft()
            ticket.report = outbox.send(ticket.records)
            self.sent.append(ticket)

    def spool(self, outbox: Any, reason: str) -> None:
        """Spool the waiting tickets' records (the sink is down): they failed for now."""
        while self.waiting:
            ticket = self.waiting.popleft()
            for record in ticket.records:
                outbox.to_spool(outbox.sink.encode(record), reason)
            ticket.settle(0, 0, len(ticket.records))

    def settle(self, outbox: Any, closing: bool) -> None:
        """Settle the sent tickets whose reports are complete (all of them when closing)."""
        for ticket in [t for t in self.sent if closing or not t.report.unsettled()]:
            self.sent.remove(ticket)
            report = ticket.report
            outbox.acknowledged(report.acked)
            for record, reason in report.retried:
                outbox.to_spool(outbox.sink.encode(record), reason)
            done = report.acked + report.refused
            ticket.settle(report.acked, report.refused, len(report.records) - done)
