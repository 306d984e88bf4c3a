"""The outbox: the one background loop that delivers a collector's records.

One :class:`Outbox` per collector per worker, driven by an
:class:`~tracker.spool.sink.OutboxCollector` (the sink). The thread is
supervised: an exception in a turn is logged, counted
(``tracker_outbox_restarts_total``) and the loop resumes after a pause that
doubles up to 5 s; after three failed turns in a row the collector is not
ready, with the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from itertools import islice
from pathlib import Path
from typing import Any

import tracker.metrics as metrics
from tracker.spool.batch import Report, Ticket, Tickets
from tracker.spool.quarantine import Quarantine
from tracker.spool.replayer import Replayer
from tracker.spool.writer import FILES, FileOps, Spool

log = logging.getLogger(__name__)

#: Consecutive failed turns after which the collector reports itself not ready.
FAILURES_BEFORE_UNREADY = 3
MAX_BACKOFF = 5.0


class Outbox:
    """The delivery loop of one collector in one worker."""

    def __init__(
        self,
        sink: Any,
        spool: Any,
        *,
        interval: float = 0.1,
        max_pending: int = 10_000,
        batch_size: int | None = None,
        backoff: tuple[float, float] = (1.0, 1.0),
        sync_interval: float = 1.0,
        quarantine_directory: str | None = None,
        files: FileOps = FILES,
        start_up: bool = True,
    ) -> None:
        """Configure; nothing starts before :meth:`open`.

        Args:
            sink: The collector.
            spool: Its loaded spool block (``directory``, ``max_bytes``, ``segment_bytes``).
            interval: Longest wait between two turns, in seconds.
            max_pending: Records kept in memory (queued or in flight); past it, spooled.
            batch_size: Records per ``send`` (default ``max_pending``); a full one wakes the loop.
            backoff: First and longest pause between probes while the sink is down.
            sync_interval: Seconds between fsyncs of fast records, scans and gauges.
            quarantine_directory: Where refused records go (``<directory>/quarantine``).
            files: The system calls the spool and the quarantine write with.
            start_up: ``False``: spool (reason ``starting``) until a first probe answers.
        """
        self.sink = sink
        self.name = sink.name
        self.spool = Spool(spool.directory, spool.max_bytes, spool.segment_bytes, files)
        where = quarantine_directory or Path(spool.directory) / "quarantine"
        self.quarantine = Quarantine(self.name, Path(where), spool.max_bytes, files)
        self.interval = interval
        self.max_pending = max_pending
        self.batch_size = batch_size or max_pending
        self.backoff = backoff
        self.sync_interval = sync_interval
        self.start_up = start_up
        self.asynchronous = sink.asynchronous()
        self.replayer = Replayer(self)
        self.lost = 0
        self.up = False
        self.why, self.detail = "starting", ""
        self._pending: deque[Any] = deque()
        self._inflight: list[Report] = []
        self._tickets = Tickets()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: Failed turns in a row and the last error, while the loop is failing.
        self.fault: tuple[int, str] | None = None
        self._pause = backoff[0]
        self._next_probe = self._next_sync = self._drain_until = 0.0

    # --- the request path -----------------------------------------------------------

    def put(self, record: Any) -> None:
        """Queue a record for the loop, or spool it while the sink is down or the queue full."""
        metrics.inc(metrics.COLLECTED, self.name)
        pending = self._pending
        if self.up and len(pending) < self.max_pending:
            pending.append(record)
            if len(pending) == self.batch_size:
                self._wake.set()
            return
        self.to_spool(self.sink.encode(record), "queue_full" if self.up else self.why)

    def journal(self, record: Any) -> bool:
        """Write a record ahead to the spool with fsync; ``False`` if it is not safe."""
        metrics.inc(metrics.COLLECTED, self.name)
        return self.to_spool(self.sink.encode(record), "durable", sync=True)

    def to_spool(self, payload: bytes, reason: str, sync: bool = False) -> bool:
        """Append ``payload`` to the spool; count and log a record that cannot be kept."""
        try:
            written = self.spool.append(payload, sync=sync)
        except OSError as ex:
            self.lost += 1
            metrics.FAILED.labels(self.name, "spool_error").inc()
            log.error("collector %s: spool write failed, event not kept: %s", self.name, ex)
            return False
        if written:
            metrics.inc(metrics.SPOOLED, self.name, reason)
            return True
        self.lost += 1
        metrics.FAILED.labels(self.name, "spool_full").inc()
        log.error(
            "collector %s: spool full (%d bytes), event lost", self.name, self.spool.max_bytes
        )
        return False

    def submit(self, records: list[Any], skipped: int = 0) -> Ticket:
        """Hand ``records`` to the loop; the ticket says what became of them."""
        ticket = self._tickets.submit(records, skipped)
        self._wake.set()
        return ticket

    # --- up and down ---------------------------------------------------------------------

    def set_down(self, why: str, detail: str = "") -> None:
        """Spool new records (reason ``why``) and probe before sending again."""
        if self.up or why != self.why:
            log.warning(
                "collector %s: not taking events (%s%s), spooling",
                self.name,
                why,
                f": {detail}" if detail else "",
            )
        self.up = False
        self.why, self.detail = why, detail
        self._next_probe = time.monotonic() + self._pause
        self._pause = min(self.backoff[1], self._pause * 2)
        metrics.SINK_UP.labels(self.name).set(0)

    def set_up(self) -> None:
        """Send again."""
        if not self.up:
            log.warning("collector %s: %s up", self.name, self.sink.sink_noun)
        self.up = True
        self.why, self.detail = "", ""
        metrics.SINK_UP.labels(self.name).set(1)

    # --- the thread ------------------------------------------------------------------------

    def open(self) -> None:
        """Open the spool and start the thread."""
        self.spool.open()
        self._stop.clear()
        if self.start_up:
            self.set_up()
        else:
            self.set_down("starting")
            self._next_probe = 0.0
        self._thread = threading.Thread(target=self._run, name=f"outbox-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failures = 0
        while True:
            try:
                finished = self._turn()
            except Exception as ex:
                failures += 1
                self.fault = (failures, f"{type(ex).__name__}: {ex}")
                metrics.THREAD_RESTARTS.labels(self.name).inc()
                log.exception("collector %s: outbox loop failed; resuming", self.name)
                if self._stop.wait(min(MAX_BACKOFF, 0.1 * 2**failures)):
                    return
                continue
            if failures:
                log.warning("collector %s: outbox loop recovered", self.name)
                failures, self.fault = 0, None
            if finished:
                return

    def _turn(self) -> bool:
        if not self.up and time.monotonic() >= self._next_probe:
            self._probe()
        stopping = self._stop.is_set()
        if self.up:
            self._send_pending()
            self._tickets.send(self)
            self.replayer.step()
        else:
            self._tickets.spool(self, self.why)
        if stopping and (not self.up or self._drained() or time.monotonic() > self._drain_until):
            return True
        self._wait(0.01 if stopping else self.interval)
        self._settle()
        if time.monotonic() >= self._next_sync:
            self._next_sync = time.monotonic() + self.sync_interval
            self.housekeeping()
        return False

    def _probe(self) -> None:
        why = self.sink.probe()
        if why is None:
            self.set_up()
        else:
            self.set_down(why, self.detail if why == self.why else "")

    def _wait(self, timeout: float) -> None:
        if self.asynchronous and (self._inflight or self._tickets.sent or self.replayer.busy()):
            self.sink.poll(timeout)
        else:
            self._wake.wait(timeout)
            self._wake.clear()

    def send(self, records: list[Any], report: Report | None = None) -> Report:
        """Hand ``records`` to the sink; a sink that raises has every record retried."""
        report = report or Report(records, self._quarantine)
        try:
            self.sink.send(records, report)
        except Exception as ex:
            log.exception("collector %s: send failed", self.name)
            self._give_up(report, "send_error", ex)
            return report
        if not self.asynchronous and report.unsettled():
            log.error("collector %s: the sink did not report every record", self.name)
            self._give_up(report, "unreported", None)
        return report

    def _give_up(self, report: Report, reason: str, ex: Exception | None) -> None:
        report.acked = report.refused = report.lost = 0
        report.retried = [(record, reason) for record in report.records]
        report.closed = True
        self.set_down(reason, f"{type(ex).__name__}: {ex}" if ex else "")

    def _quarantine(self, record: Any, reason: str, detail: str) -> bool:
        return self.quarantine.put(reason, self.sink.encode(record), detail)

    def _send_pending(self) -> None:
        pending = self._pending
        while pending and self.up:
            batch = list(islice(pending, self.batch_size))
            report = Report(batch, self._quarantine)
            # In flight before it leaves the queue: flush() never sees a batch vanish.
            self._inflight.append(report)
            for _ in batch:
                pending.popleft()
            self.send(batch, report)

    def _settle(self, closing: bool = False) -> None:
        """Act on the reports that are complete: count, keep the retries."""
        for report in [r for r in self._inflight if closing or not r.unsettled()]:
            self._inflight.remove(report)
            self.acknowledged(report.acked)
            self.lost += report.lost
            for record, reason in reversed(report.retried):
                if not closing and len(self._pending) < self.max_pending:
                    self._pending.appendleft(record)
                else:
                    self.to_spool(self.sink.encode(record), reason)
        self._tickets.settle(self, closing)

    def acknowledged(self, count: int) -> None:
        """Count records the sink took; a success ends the backoff."""
        if count:
            metrics.inc(metrics.DELIVERED, self.name, amount=count)
            self._pause = self.backoff[0]

    def housekeeping(self) -> None:
        """Re-measure the spool, publish its gauges, seal the quarantine, fsync."""
        self.spool.refresh()
        metrics.SPOOL_BYTES.labels(self.name).set(self.spool.size())
        metrics.SPOOL_AGE.labels(self.name).set(self.spool.oldest_age())
        metrics.PENDING.labels(self.name).set(self.pending())
        self.quarantine.seal()
        self.spool.sync()
        try:
            self.sink.tidy()
        except Exception:
            log.exception("collector %s: tidy failed", self.name)

    def _drained(self) -> bool:
        busy = self._pending or self._inflight or self._tickets.busy()
        return not busy and not self.replayer.busy() and not self.replayer.waiting()

    # --- shutdown and health -----------------------------------------------------------------

    def pending(self) -> int:
        """Records in memory or in flight, not yet acknowledged."""
        inflight = sum(len(r.records) - r.acked - r.refused - r.lost for r in self._inflight)
        return len(self._pending) + inflight

    def flush(self, timeout: float) -> int:
        """Wake the loop and wait up to ``timeout`` s for the queue; return what is left."""
        deadline = time.monotonic() + timeout
        while self.pending() and self._thread and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.005)
        return self.pending()

    def close(self, timeout: float) -> int:
        """Drain within half of ``timeout`` while the sink is up, spool the rest.

        Returns:
            The number of records neither delivered nor spooled (lost).
        """
        if self._thread is None:
            return 0
        lost_before = self.lost
        deadline = time.monotonic() + timeout
        self._drain_until = time.monotonic() + timeout / 2
        self._stop.set()
        self._wake.set()
        self._thread.join(max(1.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.error("collector %s: outbox loop did not stop in time", self.name)
        self._thread = None
        self.sink.disconnect(max(0.0, deadline - time.monotonic()))
        self._settle(closing=True)
        self._tickets.spool(self, "shutdown")
        self.replayer.release()
        while self._pending:
            self.to_spool(self.sink.encode(self._pending.popleft()), "shutdown")
        self.spool.close()
        self.quarantine.seal()
        metrics.PENDING.labels(self.name).set(0)
        return self.lost - lost_before

    def running(self) -> bool:
        """Whether the loop was started and not closed."""
        return self._thread is not None

    def problem(self) -> str | None:
        """Why the loop cannot be trusted with events, or ``None``."""
        if self._thread is not None and not self._thread.is_alive():
            return "background thread stopped"
        if self.fault is not None and self.fault[0] >= FAILURES_BEFORE_UNREADY:
            return f"background thread failing: {self.fault[1]}"
        return None
