"""A durable local spool: append-only segment files that outlive the process.

A collector that cannot deliver an event (broker down, queue full, shutdown
with messages pending) appends it here instead of dropping it, and replays the
spool once its sink is healthy again. It is part of the plugin API: any
collector may use it.

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

Modules: :mod:`tracker.spool.writer` (:class:`Spool`), :mod:`tracker.spool.records`
(the format, :class:`Segment`, the damage-skipping reader), :mod:`tracker.spool.options`
(:class:`SpoolOptions`, the marshmallow schema of a collector's ``spool`` block).

No directory scans on a hot loop: the spool knows the segments it sealed, and
:meth:`Spool.refresh` (called on a slow timer) finds those of other and dead
workers and re-measures the directory.
"""

from tracker.spool.options import SpoolOptions
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
from tracker.spool.writer import Spool, fsync_directory

__all__ = [
    "HEADER",
    "MAGIC",
    "MAX_RECORD",
    "SUFFIX",
    "CorruptSegment",
    "Damage",
    "Segment",
    "Spool",
    "SpoolOptions",
    "fsync_directory",
    "is_segment",
    "read_records",
    "scan",
]
