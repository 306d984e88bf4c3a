"""Records a sink refused for good, kept aside so that they block nothing behind them.

A record the sink will never take (too large, not authorised, refused by a
schema) must not be retried forever in front of the records behind it. It goes
to a *quarantine*: one spool directory per reason (``<quarantine>/<reason>/*.seg``,
the spool's own format) that an operator can inspect and re-send with
``tracker replay`` once the cause is fixed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import tracker.metrics as metrics
from tracker.spool.writer import FILES, FileOps, Spool

log = logging.getLogger(__name__)


class Quarantine:
    """Dead-letter segments of one collector, one spool directory per reason."""

    def __init__(
        self, collector: str, directory: Path, max_bytes: int, files: FileOps = FILES
    ) -> None:
        """Configure; directories are created on first use.

        Args:
            collector: The collector's name, for metrics and logs.
            directory: The quarantine's root.
            max_bytes: Cap per reason.
            files: The system calls its spools write with.
        """
        self.collector = collector
        self.directory = directory
        self.max_bytes = max_bytes
        self.files = files
        self._spools: dict[str, Spool] = {}

    def put(self, reason: str, value: bytes, detail: str) -> bool:
        """Keep one refused record; ``False`` if it could not be written (it is lost)."""
        spool = self._spools.get(reason)
        try:
            if spool is None:
                spool = Spool(self.directory / reason, self.max_bytes, files=self.files)
                spool.open()
                self._spools[reason] = spool
            written = spool.append(value)
        except OSError as ex:
            log.error("collector %s: quarantine write failed, event lost: %s", self.collector, ex)
            return False
        if not written:
            log.error("collector %s: quarantine %s full, event lost", self.collector, reason)
            return False
        metrics.inc(metrics.QUARANTINED, self.collector, reason)
        log.error(
            "collector %s: event refused for good (%s: %s), quarantined in %s",
            self.collector,
            reason,
            detail,
            spool.directory,
        )
        return True

    def seal(self) -> None:
        """Seal what was written, so that ``tracker replay`` can take it."""
        for spool in self._spools.values():
            if spool.active_records():
                spool.seal()
