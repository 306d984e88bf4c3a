"""A durable local spool, and the outbox that delivers through it (plugin API).

A collector whose sink can be down subclasses
:class:`~tracker.spool.sink.OutboxCollector` and writes ``send``; its
:class:`~tracker.spool.outbox.Outbox` queues, sends, spools what the sink
cannot take (sink down, queue full, shutdown with records pending), replays the
spool once the sink answers again, and quarantines what it refuses for good.

Layout: one directory per collector, shared by every worker of a pod (and by
the next pod, if it is a persistent volume). Each worker appends to its own
*active* segment, ``<time_ns>-<pid>-<seq>.seg``; names sort oldest first, and
the name's time bounds the age of the segment's oldest record.

Ownership is an ``flock`` on the open segment, never a pid: the writer holds
the lock on its active segment, a replayer holds it on the segment it replays,
and the kernel drops it when a process dies, even by SIGKILL. So a segment
whose lock can be taken is free: sealed by its writer, or left by a dead one.
A segment is deleted only after every good record in it was acknowledged.

Record format, after an 8-byte file header ``TRKSPL01``: a 4-byte big-endian
length, the 4-byte CRC-32 of the payload, the payload. A write that fails or
comes up short is cut off again (``ftruncate``) and the segment sealed before
anything else is appended, so a disk that fills cannot leave a torn record in
front of acknowledged ones. What a crash or a bad disk leaves anyway (a torn
tail, a zeroed block, a header-less file) is skipped by the reader, which
resynchronises on the next record whose length and CRC check out, counts the
bad stretch and goes on.

Modules: :mod:`tracker.spool.sink` (:class:`OutboxCollector`), :mod:`tracker.spool.outbox`
(the loop), :mod:`tracker.spool.batch` (:class:`Report`, what a sink says of a batch),
:mod:`tracker.spool.replayer` (segment replay), :mod:`tracker.spool.quarantine`,
:mod:`tracker.spool.writer` (:class:`Spool`, :class:`FileOps`), :mod:`tracker.spool.records`
(the format, :class:`Segment`, the damage-skipping reader), :mod:`tracker.spool.options`
(:class:`SpoolOptions`, the schema of a collector's ``spool`` block).

No directory scans on a hot loop: the spool knows the segments it sealed, and
:meth:`Spool.refresh` (called on a slow timer) finds those of other and dead
workers and re-measures the directory.
"""

from tracker.spool.batch import Report
from tracker.spool.options import SpoolConfig, SpoolOptions
from tracker.spool.outbox import Outbox
from tracker.spool.quarantine import Quarantine
from tracker.spool.records import (
    HEADER,
    MAGIC,
    MAX_RECORD,
    SUFFIX,
    CorruptSegment,
    Damage,
    Segment,
    is_segment,
    read_records,
    scan,
)
from tracker.spool.sink import OutboxCollector
from tracker.spool.writer import FILES, FileOps, Spool, fsync_directory

__all__ = [
    "FILES",
    "HEADER",
    "MAGIC",
    "MAX_RECORD",
    "SUFFIX",
    "CorruptSegment",
    "Damage",
    "FileOps",
    "Outbox",
    "OutboxCollector",
    "Quarantine",
    "Report",
    "Segment",
    "Spool",
    "SpoolConfig",
    "SpoolOptions",
    "fsync_directory",
    "is_segment",
    "read_records",
    "scan",
]
