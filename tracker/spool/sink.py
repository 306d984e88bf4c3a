"""The base of a collector whose sink can be down: it implements ``send``, the outbox the rest.

A collector built on :class:`OutboxCollector` says how to send a batch of
records and which of them the sink acknowledged, refused for good or must see
again; everything else is here, written once (kombu's virtual transport base
owns the loop and a transport implements a few small methods; Snowplow's
``Sink`` is ``isHealthy``, ``storeRawEvents`` and ``maxBytes``):

- ``collect`` appends the record to an in-memory queue of at most
  ``max_pending`` records; while the sink is down, or past the bound, the
  record goes to the collector's durable :class:`~tracker.spool.Spool` instead.
  ``deliver`` (a ``durable`` path) writes the record ahead to the spool with
  fsync and returns; the loop sends it within a turn.
- One supervised thread per worker (:mod:`tracker.spool.outbox`) wakes every
  ``interval`` seconds, when ``batch_size`` records are waiting, or on the
  sink's own reports, never per event. It sends what is queued, replays spool
  segments oldest first (its own, and those of other and dead workers, found
  by one directory scan every ``sync_interval``), quarantines what the sink
  refused for good, probes a sink that is down, publishes the spool gauges,
  and fsyncs the fast-path records.
- A segment is deleted when its per-segment :class:`~tracker.plugins.Delivery`
  says every intact record was acknowledged or quarantined; damage is skipped,
  counted and logged.

Methods called by the loop (``send``, ``poll``, ``probe``) run on its thread
only, never in a request: a client such as librdkafka's is created in
``connect`` after the fork, and never flushed or polled on the request path.
"""

from __future__ import annotations

import json
from typing import Any

from tracker.event import Event
from tracker.plugins import Collector, Delivery, Health
from tracker.spool.batch import Report
from tracker.spool.outbox import Outbox


class OutboxCollector(Collector):
    """A collector whose sink can be down: implement :meth:`send`, the rest is done.

    Override as needed:

    - :meth:`send` (required): send a batch; report each record on the
      :class:`~tracker.spool.batch.Report`.
    - :meth:`connect` / :meth:`disconnect`: open and release the client, in
      the worker, after the fork / at shutdown.
    - :meth:`probe`: while the sink is down, is it back? (default: try again
      after a pause that doubles up to ``backoff[1]``).
    - :meth:`poll`: serve reports the sink delivers later (an asynchronous
      client); without it, every record must be reported before ``send``
      returns.
    - :meth:`record`, :meth:`encode`, :meth:`decode`: what is queued and
      spooled for an event (default: the event, as its JSON).
    - :meth:`problem`: a reason the collector cannot be trusted with events,
      for readiness.

    Attributes:
        outbox: The :class:`~tracker.spool.outbox.Outbox`; make it in ``__init__``
            with :meth:`make_outbox`.
        sink_noun: What the status line calls the sink (``broker``, ``redis``).
        record_noun: What it calls the records (``events``, ``notices``).
    """

    sink_noun = "sink"
    record_noun = "events"
    outbox: Outbox

    def make_outbox(self, spool: Any, **settings: Any) -> None:
        """Create :attr:`outbox` from the loaded ``spool`` block and loop settings.

        Args:
            spool: The collector's loaded :class:`~tracker.spool.SpoolOptions` block.
            **settings: ``interval``, ``max_pending``, ``batch_size``, ``backoff``,
                ``sync_interval``, ``quarantine_directory``, ``files``, ``start_up``
                (see :class:`~tracker.spool.outbox.Outbox`).
        """
        self.outbox = Outbox(self, spool, **settings)

    # --- what a collector implements ------------------------------------------------

    def send(self, records: list[Any], report: Report) -> None:
        """Send ``records``; report each one as acknowledged, refused for good or to retry."""
        raise NotImplementedError

    def poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the sink's reports on records sent earlier."""
        raise NotImplementedError

    def probe(self) -> str | None:
        """Return ``None`` if the sink takes records again, else why not (a reason label)."""
        return None

    def problem(self) -> str | None:
        """Return why events are not safe here (not ready), or ``None``."""
        return None

    def tidy(self) -> None:
        """Periodic upkeep on the outbox's thread, every ``sync_interval`` s (refresh a cache).

        Never called on the request thread; an exception is logged and the loop goes on.
        """

    def connect(self) -> None:
        """Create the sink's client; called in the worker after the fork."""

    def disconnect(self, timeout: float) -> None:
        """Settle or hand back (as retries) what is in flight, then release the client."""

    def record(self, event: Event) -> Any | None:
        """Return what to queue for ``event``, or ``None`` when there is nothing to send."""
        return event

    def encode(self, record: Any) -> bytes:
        """Return a record as spooled."""
        return record.to_json()

    def decode(self, payload: bytes) -> Any:
        """Return a spooled record; raise ``ValueError``, ``KeyError`` or ``TypeError`` if bad."""
        return Event.from_dict(json.loads(payload))

    # --- the Collector contract, written once ------------------------------------------

    def open(self) -> None:
        """Connect, open the spool and start the outbox's thread."""
        self.connect()
        self.outbox.open()

    def collect(self, event: Event) -> None:
        """Queue the event's record (or spool it); never blocks on the sink."""
        record = self.record(event)
        if record is not None:
            self.outbox.put(record)

    def deliver(self, event: Event, timeout: float) -> bool:
        """Write the record ahead to the spool with fsync; the loop sends it within a turn.

        One local fsync instead of a round trip to the sink, which would hold
        a meinheld worker; the spool's replay delivers it and deletes the
        segment once acknowledged, so there is no second copy.
        """
        record = self.record(event)
        return record is None or self.outbox.journal(record)

    def redeliver(self, events: list[Event], timeout: float) -> Delivery:
        """Send ``events`` and wait up to ``timeout`` s for what the sink says of them."""
        records = [r for r in map(self.record, events) if r is not None]
        ticket = self.outbox.submit(records, skipped=len(events) - len(records))
        return ticket.wait(timeout)

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s until the queue is sent; return what is still pending."""
        return self.outbox.flush(timeout)

    def close(self, timeout: float) -> int:
        """Send or spool what is left within ``timeout``; return the records lost."""
        return self.outbox.close(timeout)

    def health(self) -> Health:
        """Ready while events are safe: no problem, and the sink up or room in the spool."""
        outbox = self.outbox
        if not outbox.running():
            return Health(False, "not open")
        problem = self._problem()
        if problem is not None:
            state = f"{problem}; spooling"
        elif outbox.up:
            state = f"{self.sink_noun} up"
        else:
            detail = f" ({outbox.detail})" if outbox.detail else ""
            state = f"{outbox.why.replace('_', ' ')}{detail}, spooling"
        ok = problem is None and (outbox.up or outbox.spool.has_room(64 << 10))
        return Health(
            ok,
            f"{state}; {outbox.pending()} of {outbox.max_pending} {self.record_noun} pending; "
            f"spool {outbox.spool.size()} of {outbox.spool.max_bytes} bytes",
        )

    def _problem(self) -> str | None:
        return self.problem() or self.outbox.problem()

    def asynchronous(self) -> bool:
        """Whether the sink reports records after ``send`` returns (it implements ``poll``)."""
        return type(self).poll is not OutboxCollector.poll

    def pending(self) -> int:
        """Records taken by this process and not yet acknowledged or spooled."""
        return self.outbox.pending()
