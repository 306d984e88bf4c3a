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

No directory scans on a hot loop: the spool knows the segments it sealed, and
:meth:`Spool.refresh` (called on a slow timer) finds those of other and dead
workers and re-measures the directory.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"TRKSPL01"
HEADER = struct.Struct(">II")
SUFFIX = ".seg"
#: The largest record the reader accepts while resynchronising after damage.
MAX_RECORD = 16 << 20

log = logging.getLogger(__name__)


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
        self._sizes: dict[Path, int] = {}  # every segment but our active one, by path
        self._on_disk = 0  # their sum, kept up to date: append checks it on the request path
        self._claimable: set[Path] = set()  # of those, the ones not known to be locked
        self._dirty = False

    def open(self) -> None:
        """Create the directory and find what is already there."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.refresh()

    def refresh(self) -> None:
        """Scan the directory: other workers' segments appear, grow and go.

        One ``glob`` and a ``stat`` per segment: call it on a slow timer, not
        per loop turn.
        """
        sizes = {}
        for path in self.directory.glob(f"*{SUFFIX}"):
            try:
                sizes[path] = path.stat().st_size
            except FileNotFoundError:
                continue
        with self._lock:
            if self._active is not None:
                sizes.pop(self._active.path, None)
            self._sizes = sizes
            self._on_disk = sum(sizes.values())
            self._claimable = set(sizes)

    def size(self) -> int:
        """Return the bytes held by every segment, as last measured plus appends since."""
        with self._lock:
            return self._used_locked()

    def _used_locked(self) -> int:
        return self._on_disk + (self._active.size if self._active else 0)

    def has_room(self, nbytes: int = 0) -> bool:
        """Return whether ``nbytes`` more would stay within the cap."""
        return self.size() + nbytes + HEADER.size <= self.max_bytes

    def oldest_age(self, now_ns: int | None = None) -> float:
        """Return the age in seconds of the oldest record spooled, 0 if none is."""
        with self._lock:
            names = [p.name for p in self._sizes]
            if self._active is not None and self._active.size > len(MAGIC):
                names.append(self._active.path.name)
        born = [int(n.split("-", 1)[0]) for n in names if n.split("-", 1)[0].isdigit()]
        if not born:
            return 0.0
        return max(0.0, ((now_ns or time.time_ns()) - min(born)) / 1e9)

    def append(self, payload: bytes, sync: bool = False) -> bool:
        """Append one record; with ``sync``, fsync before returning.

        A write or fsync that fails leaves nothing behind: the record is cut off
        again and the segment sealed, so the next append starts a new one.

        Returns:
            ``False`` (and writes nothing) when the spool is full.

        Raises:
            OSError: The disk refused the write or the fsync; the record is not
                in the spool.
            ValueError: ``payload`` is empty.
        """
        if not payload:
            raise ValueError("empty spool record")
        record = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._used_locked() + len(record) > self.max_bytes:
                return False
            if self._active is None:
                self._active = self._new_writer()
            writer = self._active
            good = writer.size
            try:
                writer.write(record)
                if sync:
                    os.fdatasync(writer.fd)
            except OSError:
                self._abandon_locked(good)
                raise
            if not sync:
                self._dirty = True
            if writer.size >= self.segment_bytes:
                self._seal_locked()
            return True

    def _new_writer(self) -> _Writer:
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}{SUFFIX}"
        return _Writer.create(self.directory, name)

    def _abandon_locked(self, good: int) -> None:
        """Cut the active segment back to ``good`` bytes and seal it."""
        writer = self._active
        try:
            os.ftruncate(writer.fd, good)
            writer.size = good
        except OSError as ex:
            # The torn record stays; the reader skips it and keeps what follows.
            log.error("spool %s: cannot cut off a failed write: %s", writer.path, ex)
        if writer.size <= len(MAGIC):
            writer.path.unlink(missing_ok=True)
            writer.close()
            self._active = None
            self._dirty = False
            return
        self._seal_locked()

    def sync(self) -> None:
        """Fsync the active segment if anything was appended since the last sync.

        Raises:
            OSError: The fsync failed; the segment is sealed (a later fsync could
                not be trusted) and the next append starts a new one.
        """
        with self._lock:
            if self._active is not None and self._dirty:
                self._dirty = False
                try:
                    os.fdatasync(self._active.fd)
                except OSError:
                    self._seal_locked()
                    raise

    def seal(self) -> None:
        """Close the active segment so that it can be replayed."""
        with self._lock:
            self._seal_locked()

    def _seal_locked(self) -> None:
        writer = self._active
        if writer is None:
            return
        self._active = None
        self._dirty = False
        try:
            os.fdatasync(writer.fd)
        except OSError as ex:
            log.error("spool %s: fsync failed while sealing: %s", writer.path, ex)
        writer.close()
        self._sizes[writer.path] = writer.size
        self._on_disk += writer.size
        self._claimable.add(writer.path)

    def pending(self) -> bool:
        """Return whether a segment other than this process's active one may be claimed."""
        with self._lock:
            return bool(self._claimable)

    def active_records(self) -> bool:
        """Return whether this process's active segment holds records."""
        with self._lock:
            return self._active is not None and self._active.size > len(MAGIC)

    def claim(self) -> Segment | None:
        """Lock and return the oldest segment nobody owns, or ``None``.

        Segments another process holds are passed over until the next
        :meth:`refresh`.
        """
        with self._lock:
            candidates = sorted(self._claimable)
        for path in candidates:
            segment = Segment.try_lock(path)
            with self._lock:
                if segment is not None:
                    return segment
                self._claimable.discard(path)
                if not path.exists():
                    self._on_disk -= self._sizes.pop(path, 0)
        return None

    def forget(self, segment: Segment) -> None:
        """Delete a fully acknowledged segment."""
        segment.delete()
        with self._lock:
            self._on_disk -= self._sizes.pop(segment.path, 0)
            self._claimable.discard(segment.path)

    def close(self) -> None:
        """Seal the active segment (fsynced) and release it."""
        self.seal()


def fsync_directory(directory: Path) -> None:
    """Make a directory's entries (created, renamed files) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Writer:
    """An active segment, locked by its writer for as long as it is open."""

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path = path
        self.fd = fd
        self.size = size

    @classmethod
    def create(cls, directory: Path, name: str) -> _Writer:
        # Lock before the file gets its final name, so no replayer can take it
        # first; the header is on disk before the name, and the name before the
        # first record, so a power cut cannot leave a named, header-less file.
        tmp = directory / f".{name}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.write(fd, MAGIC) != len(MAGIC):
                raise OSError(f"{tmp}: short write of the segment header")
            os.fdatasync(fd)
            path = directory / name
            os.rename(tmp, path)
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        try:
            fsync_directory(directory)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return cls(path, fd, len(MAGIC))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
            self.size += written

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class Damage:
    """What the reader skipped in one segment."""

    regions: int = 0
    bytes: int = 0
    header: bool = True  # the file starts with the spool header


class Segment:
    """A sealed or orphaned segment, locked by this process for replay."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.damage = Damage()

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
        """Yield every intact record, oldest first; what was skipped is in ``damage``."""
        self.damage = Damage()
        if os.fstat(self.fd).st_size == 0:
            # Named but empty: a power cut between the rename and the first write.
            self.damage.header = False
            self.damage.regions = 1
            return
        with mmap.mmap(self.fd, 0, prot=mmap.PROT_READ) as data:
            yield from scan(data, self.damage)

    def delete(self) -> None:
        """Remove the segment (every good record was acknowledged) and release it."""
        self.path.unlink(missing_ok=True)
        os.close(self.fd)

    def release(self) -> None:
        """Give the segment back for a later replay."""
        os.close(self.fd)


class CorruptSegment(Exception):
    """A file is not a spool segment."""


def scan(data: bytes | mmap.mmap, damage: Damage) -> Iterator[bytes]:
    """Yield the intact records of a segment's bytes, skipping damaged stretches.

    A stretch that is not a record (a torn write, zeroes, garbage, a missing
    header) is skipped up to the next offset where a record's length and CRC
    check out; ``damage`` counts the stretches and their bytes.
    """
    end = len(data)
    damage.header = data[: len(MAGIC)] == MAGIC
    pos = len(MAGIC) if damage.header else 0
    bad_from = None if damage.header else 0
    while pos + HEADER.size <= end:
        length, crc = HEADER.unpack_from(data, pos)
        body = pos + HEADER.size
        if 0 < length <= MAX_RECORD and body + length <= end:
            payload = data[body : body + length]
            if zlib.crc32(payload) == crc:
                if bad_from is not None:
                    damage.regions += 1
                    damage.bytes += pos - bad_from
                    bad_from = None
                yield payload
                pos = body + length
                continue
        if bad_from is None:
            bad_from = pos
        pos += 1
    if bad_from is not None or pos < end:
        damage.regions += 1
        damage.bytes += end - (pos if bad_from is None else bad_from)


def read_records(fh, name: str = "segment") -> Iterator[bytes]:
    """Yield the intact records of an open segment file.

    Raises:
        CorruptSegment: The file does not start with the spool header.
    """
    fh.seek(0)
    data = fh.read()
    if data[: len(MAGIC)] != MAGIC:
        raise CorruptSegment(f"{name}: not a tracker spool segment")
    yield from scan(data, Damage())


def is_segment(path: str | os.PathLike[str]) -> bool:
    """Return whether ``path`` starts with the spool header."""
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC
