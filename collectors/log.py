"""The ``log`` collector: events as JSON lines in a size-rotated file."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from logging.handlers import RotatingFileHandler
from typing import ClassVar

from marshmallow import fields, validate

import tracker.metrics as metrics
from tracker.event import Event
from tracker.plugins import Collector, Delivery, Health, Options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogConfig:
    """The loaded options of a ``log`` block."""

    path: str
    max_bytes: int
    backup_count: int


class LogOptions(Options):
    """Options of the ``log`` collector."""

    model = LogConfig

    path = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": (
                "File path. `{pid}` is replaced by the worker's process id: each worker "
                "writes its own file, because several processes rotating one file would race."
            )
        },
    )
    max_bytes = fields.Integer(
        load_default=100 * 1024 * 1024,
        validate=validate.Range(min=1024),
        metadata={"description": "Rotate when the file would exceed this size."},
    )
    backup_count = fields.Integer(
        load_default=10,
        validate=validate.Range(min=0),
        metadata={"description": "Rotated files kept (`.1` is the newest)."},
    )


class _RotatingFile(RotatingFileHandler):
    """The standard size-rotating file, written to directly.

    Going through ``emit`` would build a ``LogRecord`` and format it for every
    event, about a quarter of a pixel request's time; this keeps the
    handler's rotation (``doRollover``) and writes the line itself.
    """

    def write(self, line: bytes) -> None:
        """Append one line, rotating first if it would pass ``maxBytes``."""
        if self.stream is None:
            self.stream = self._open()
        if self.maxBytes and self.stream.buffer.tell() + len(line) > self.maxBytes:
            self.doRollover()
        self.stream.buffer.write(line)
        self.stream.flush()


class LogCollector(Collector):
    """Append each event as one JSON line to ``path``, rotating by size.

    Each worker writes its own file: ``{pid}`` in ``path`` is replaced by the
    worker's process id (rotation by several processes on one file would race).
    Rotation keeps ``backup_count`` old files (``.1``, ``.2``...). Lines are
    written without fsync: the file is an audit and replay source, not the
    durable path.
    """

    options_schema: ClassVar = LogOptions

    def __init__(self, name: str, options: LogConfig) -> None:
        super().__init__(name, options)
        self.handler: _RotatingFile | None = None
        # collect() may also come from another collector's thread (a rejected-stream
        # record offered through late_refusal): one writer at a time, rotation included.
        self._lock = threading.Lock()

    def open(self) -> None:
        """Open this worker's file."""
        path = self.options.path.replace("{pid}", str(os.getpid()))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.handler = _RotatingFile(
            path,
            maxBytes=self.options.max_bytes,
            backupCount=self.options.backup_count,
            encoding="utf-8",
        )

    def collect(self, event: Event) -> None:
        """Write the event as one line."""
        self._write(event)

    def _write(self, event: Event) -> bool:
        line = event.to_json() + b"\n"
        try:
            with self._lock:
                self.handler.write(line)
        except Exception:
            metrics.FAILED.labels(self.name, "write").inc()
            log.exception("log collector %s could not write event %s", self.name, event.id)
            return False
        metrics.inc(metrics.COLLECTED, self.name)
        metrics.inc(metrics.DELIVERED, self.name)
        return True

    def redeliver(self, events: list[Event], timeout: float) -> Delivery:
        """Write each event; a line written is delivered, a failed write is not."""
        written = sum(self._write(event) for event in events)
        return Delivery(acknowledged=written, failed=len(events) - written)

    def close(self, timeout: float) -> int:
        """Close the file; every line is already written."""
        if self.handler is not None:
            self.handler.close()
            self.handler = None
        return 0

    def health(self) -> Health:
        """Ready while the file is open."""
        return Health(True) if self.handler is not None else Health(False, "not open")
