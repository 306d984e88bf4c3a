"""The ``webhook`` collector: POST events in JSON batches to an HTTP endpoint.

An example of a third-party collector plugin, packaged on its own with the
``tracker.collectors`` entry point ``webhook``. It keeps the plugin contract of
``tracker.plugins``: nothing is opened in ``__init__`` (the gunicorn master runs it
before forking), ``open`` starts one sender thread per worker, ``collect`` only
appends to a bounded queue on the request path, and the thread wakes on a timer,
not per event.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import deque
from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

from tracker.event import Event
from tracker.plugins import Collector


class WebhookOptions(Schema):
    """Options of the ``webhook`` collector."""

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    batch_size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10_000))
    interval = fields.Float(load_default=1.0, validate=validate.Range(min=0.01, max=60))
    max_queue = fields.Integer(load_default=10_000, validate=validate.Range(min=1))
    timeout = fields.Float(load_default=2.0, validate=validate.Range(min=0.1, max=30))


class WebhookCollector(Collector):
    """Send events to ``url`` as JSON arrays, from a background thread.

    Attributes:
        sent: Events the endpoint answered 2xx for.
        dropped: Events refused because the queue was full.
    """

    options_schema: ClassVar = WebhookOptions

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.queue: deque[dict[str, Any]] = deque()
        self.sent = 0
        self.dropped = 0
        self.last_error = ""
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Start this worker's sender thread (after the fork)."""
        self._thread = threading.Thread(target=self._run, name=f"webhook-{self.name}", daemon=True)
        self._thread.start()

    def collect(self, event: Event) -> None:
        """Queue the event; when the queue is full, drop and count it (never block)."""
        if len(self.queue) >= self.options["max_queue"]:
            self.dropped += 1
            return
        self.queue.append(event.to_dict())

    def flush(self, timeout: float) -> int:
        """Send what is queued now, for up to ``timeout`` seconds; return what is left."""
        self._send_all(timeout)
        return len(self.queue)

    def close(self, timeout: float) -> int:
        """Stop the thread, send what is left; return the events not delivered."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.flush(timeout) + self.dropped

    def healthy(self) -> bool:
        """Return whether the last POST succeeded (or none failed yet)."""
        return not self.last_error

    def status(self) -> str:
        """Describe the queue and the last error, for ``/readyz``."""
        return self.last_error or f"ok, {len(self.queue)} queued"

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.options["interval"])
            self._send_all(self.options["timeout"])

    def _send_all(self, timeout: float) -> None:
        while self.queue and self._send_batch(timeout):
            pass

    def _send_batch(self, timeout: float) -> bool:
        size = min(self.options["batch_size"], len(self.queue))
        batch = [self.queue.popleft() for _ in range(size)]
        request = urllib.request.Request(
            self.options["url"],
            data=json.dumps(batch).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except OSError as ex:
            # Keep the batch, in order, for the next try.
            self.queue.extendleft(reversed(batch))
            self.last_error = f"POST failed: {ex}"
            return False
        self.sent += len(batch)
        self.last_error = ""
        return True
