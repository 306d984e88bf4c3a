"""The writing side of the spool: appends, sealing, failed writes cut off, the size cap."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import zlib
from pathlib import Path

from tracker.spool.records import HEADER, MAGIC, SUFFIX, Segment

log = logging.getLogger(__name__)


class FileOps:
    """The system calls a spool makes, as one object it is given.

    A test (or a platform that needs another call) passes its own, for
    instance one whose ``write`` fails with ``ENOSPC`` on cue, instead of
    patching :mod:`os` for the whole process.
    """

    open = staticmethod(os.open)
    write = staticmethod(os.write)
    fdatasync = staticmethod(os.fdatasync)
    fsync = staticmethod(os.fsync)
    ftruncate = staticmethod(os.ftruncate)
    rename = staticmethod(os.rename)
    close = staticmethod(os.close)


#: The real system calls.
FILES = FileOps()


class Spool:
    """The spool of one collector in one process.

    Thread-safe: the request thread and a collector's background thread may
    append at once.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        segment_bytes: int = 16 << 20,
        files: FileOps = FILES,
    ) -> None:
        """Configure; nothing is touched on disk until :meth:`open`.

        Args:
            directory: Where the segments live; created if missing.
            max_bytes: Cap on all segments in the directory together. An append
                that would pass it is refused.
            segment_bytes: Size at which the active segment is sealed.
            files: The system calls to write with (:class:`FileOps`).
        """
        self.directory = Path(directory)
        self.files = files
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
                    self.files.fdatasync(writer.fd)
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
        return _Writer.create(self.directory, name, self.files)

    def _abandon_locked(self, good: int) -> None:
        """Cut the active segment back to ``good`` bytes and seal it."""
        writer = self._active
        try:
            self.files.ftruncate(writer.fd, good)
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
                    self.files.fdatasync(self._active.fd)
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
            self.files.fdatasync(writer.fd)
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


def fsync_directory(directory: Path, files: FileOps = FILES) -> None:
    """Make a directory's entries (created, renamed files) durable."""
    fd = files.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        files.fsync(fd)
    finally:
        files.close(fd)


class _Writer:
    """An active segment, locked by its writer for as long as it is open."""

    def __init__(self, path: Path, fd: int, size: int, files: FileOps) -> None:
        self.path = path
        self.fd = fd
        self.size = size
        self.files = files

    @classmethod
    def create(cls, directory: Path, name: str, files: FileOps) -> _Writer:
        # Lock before the file gets its final name, so no replayer can take it
        # first; the header is on disk before the name, and the name before the
        # first record, so a power cut cannot leave a named, header-less file.
        tmp = directory / f".{name}.new"
        fd = files.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if files.write(fd, MAGIC) != len(MAGIC):
                raise OSError(f"{tmp}: short write of the segment header")
            files.fdatasync(fd)
            path = directory / name
            files.rename(tmp, path)
        except OSError:
            files.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        try:
            fsync_directory(directory, files)
        except OSError:
            files.close(fd)
            path.unlink(missing_ok=True)
            raise
        return cls(path, fd, len(MAGIC), files)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self.files.write(self.fd, view)
            view = view[written:]
            self.size += written

    def close(self) -> None:
        self.files.close(self.fd)
