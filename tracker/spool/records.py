"""The segment format: reading records back, skipping what a crash or a bad disk damaged."""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"TRKSPL01"
HEADER = struct.Struct(">II")
SUFFIX = ".seg"
#: The largest record the reader accepts while resynchronising after damage.
MAX_RECORD = 16 << 20


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
