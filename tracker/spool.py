"""A durable local spool: append-only segment files that outlive the process.

A collector that cannot deliver an event (broker down, queue full, shutdown
with messages pending) appends it here instead of dropping it, and replays the
spool once its sink is healthy again. It is part of the plugin API: any
collector may use it.

Layout: one directory per collector, shared by every worker of a pod (and by
the next pod, if it is a persistent volume). Each worker appends to its own
*active* segment, ``<time_ns>-<pid>-<seq>.seg``; names sort oldest first.

Ownership is an ``flock`` on the open segment, never a pid: the writer holds
the lock on its active segment, a replayer holds it on the segment it replays,
and the kernel drops it when a process dies, even by SIGKILL. So a segment
whose lock can be taken is free: sealed by its writer, or left by a dead one.
A segment is deleted only after every record in it was acknowledged.

Record format, after an 8-byte file header ``TRKSPL01``: a 4-byte big-endian
length, the 4-byte CRC-32 of the payload, the payload. A torn record at the end
of a segment (the writer died mid-write) fails its length or CRC check and ends
the segment; every record before it is intact.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

MAGIC = b"TRKSPL01"
HEADER = struct.Struct(">II")
SUFFIX = ".seg"


class Spool:
    """The spool of one collector in one process.

    Thread-safe: the request thread and a collector's background thread may
    append at once.
    """

    def __init__(
        self, directory: str | os.PathLike[str], max_bytes: int, segment_bytes: int = 16 << 20
    ) -> None:
        """Configure; nothing is touched on disk until :meth:`open`.

        Args:
            directory: Where the segments live; created if missing.
            max_bytes: Cap on all segments in the directory together. An append
                that would pass it is refused.
            segment_bytes: Size at which the active segment is sealed.
        """
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._active: _Writer | None = None
        self._seq = 0
        self._on_disk = 0  # bytes in the directory at the last scan, excluding the active file
        self._dirty = False

    def open(self) -> None:
        """Create the directory and measure what is already there."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rescan()

    def _rescan(self) -> None:
        active = self._active.path if self._active else None
        total = 0
        for path in self.directory.glob(f"*{SUFFIX}"):
            if path != active:
                try:
                    total += path.stat().st_size
                except FileNotFoundError:
                    continue
        self._on_disk = total

    def refresh(self) -> None:
        """Re-measure the directory: other workers' segments grow and shrink too."""
        with self._lock:
            self._rescan()

    def size(self) -> int:
        """Return the bytes held by every segment, as last measured plus appends since."""
        with self._lock:
            return self._on_disk + (self._active.size if self._active else 0)

    def has_room(self, nbytes: int = 0) -> bool:
        """Return whether ``nbytes`` more would stay within the cap."""
        return self.size() + nbytes + HEADER.size <= self.max_bytes

    def append(self, payload: bytes, sync: bool = False) -> bool:
        """Append one record; with ``sync``, fsync before returning.

        Returns:
            ``False`` (and writes nothing) when the spool is full.

        Raises:
            OSError: The disk refused the write.
        """
        with self._lock:
            used = self._on_disk + (self._active.size if self._active else 0)
            if used + HEADER.size + len(payload) > self.max_bytes:
                return False
            if self._active is None:
                self._active = self._new_writer()
            self._active.write(HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            if sync:
                os.fdatasync(self._active.fd)
            else:
                self._dirty = True
            if self._active.size >= self.segment_bytes:
                self._seal_locked()
            return True

    def _new_writer(self) -> _Writer:
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}{SUFFIX}"
        return _Writer.create(self.directory, name)

    def sync(self) -> None:
        """Fsync the active segment if anything was appended since the last sync."""
        with self._lock:
            if self._active is not None and self._dirty:
                os.fdatasync(self._active.fd)
            self._dirty = False

    def seal(self) -> None:
        """Close the active segment so that it can be replayed."""
        with self._lock:
            self._seal_locked()

    def _seal_locked(self) -> None:
        if self._active is None:
            return
        os.fdatasync(self._active.fd)
        self._on_disk += self._active.size
        self._active.close()
        self._active = None
        self._dirty = False

    def pending(self) -> bool:
        """Return whether any segment other than this process's active one exists."""
        active = self._active.path if self._active else None
        return any(p != active for p in self.directory.glob(f"*{SUFFIX}"))

    def active_records(self) -> bool:
        """Return whether this process's active segment holds records."""
        with self._lock:
            return self._active is not None and self._active.size > len(MAGIC)

    def claim(self) -> Segment | None:
        """Lock and return the oldest segment nobody owns, or ``None``."""
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            segment = Segment.try_lock(path)
            if segment is not None:
                return segment
        return None

    def forget(self, segment: Segment) -> None:
        """Delete a fully acknowledged segment and update the size."""
        segment.delete()
        with self._lock:
            self._rescan()

    def close(self) -> None:
        """Seal the active segment (fsynced) and release it."""
        self.seal()


class _Writer:
    """An active segment, locked by its writer for as long as it is open."""

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path = path
        self.fd = fd
        self.size = size

    @classmethod
    def create(cls, directory: Path, name: str) -> _Writer:
        # Lock before the file gets its final name, so no replayer can take it first.
        tmp = directory / f".{name}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, MAGIC)
        path = directory / name
        os.rename(tmp, path)
        return cls(path, fd, len(MAGIC))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
            self.size += written

    def close(self) -> None:
        os.close(self.fd)


class Segment:
    """A sealed or orphaned segment, locked by this process for replay."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def try_lock(cls, path: Path) -> Segment | None:
        """Open and lock ``path``; ``None`` if another process owns it or it is gone."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if os.fstat(fd).st_nlink == 0:
            # Deleted by its last replayer between our open() and flock().
            os.close(fd)
            return None
        return cls(path, fd)

    def records(self) -> Iterator[bytes]:
        """Yield every intact record, oldest first."""
        with os.fdopen(os.dup(self.fd), "rb") as fh:
            yield from read_records(fh, str(self.path))

    def delete(self) -> None:
        """Remove the segment (every record was acknowledged) and release it."""
        self.path.unlink(missing_ok=True)
        os.close(self.fd)

    def release(self) -> None:
        """Give the segment back for a later replay."""
        os.close(self.fd)


class CorruptSegment(Exception):
    """A file is not a spool segment."""


def read_records(fh, name: str = "segment") -> Iterator[bytes]:
    """Yield the intact records of an open segment file.

    Raises:
        CorruptSegment: The file does not start with the spool header.
    """
    fh.seek(0)
    if fh.read(len(MAGIC)) != MAGIC:
        raise CorruptSegment(f"{name}: not a tracker spool segment")
    while True:
        header = fh.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        length, crc = HEADER.unpack(header)
        payload = fh.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            return  # torn tail: the writer died mid-record
        yield payload


def is_segment(path: str | os.PathLike[str]) -> bool:
    """Return whether ``path`` starts with the spool header."""
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC
