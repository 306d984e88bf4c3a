"""The durable spool: segments, ownership by flock, torn tails, the size cap."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from marshmallow import ValidationError

from tracker.spool import (
    MAGIC,
    CorruptSegment,
    FileOps,
    Spool,
    SpoolOptions,
    is_segment,
    read_records,
)


def make(tmp_path, **kwargs) -> Spool:
    spool = Spool(tmp_path / "spool", kwargs.pop("max_bytes", 1 << 20), **kwargs)
    spool.open()
    return spool


def test_records_come_back_in_order_after_sealing(tmp_path):
    spool = make(tmp_path)
    payloads = [f"event-{i}".encode() for i in range(100)]
    for p in payloads:
        assert spool.append(p)
    # The writer owns its active segment: nobody can claim it yet.
    assert spool.claim() is None
    spool.seal()
    segment = spool.claim()
    assert list(segment.records()) == payloads
    spool.forget(segment)
    assert spool.claim() is None
    assert spool.size() == 0
    assert list((tmp_path / "spool").iterdir()) == []


def test_segments_rotate_by_size_and_are_claimed_oldest_first(tmp_path):
    spool = make(tmp_path, segment_bytes=64 << 10)
    for i in range(3000):
        spool.append(f"{i:06d}".encode() * 10)
    spool.seal()
    seen = []
    while (segment := spool.claim()) is not None:
        seen.extend(segment.records())
        spool.forget(segment)
    assert len(seen) == 3000
    assert seen == [f"{i:06d}".encode() * 10 for i in range(3000)]


def test_a_claimed_segment_is_not_claimed_twice_until_released(tmp_path):
    spool = make(tmp_path)
    spool.append(b"x")
    spool.seal()
    first = spool.claim()
    other = Spool(tmp_path / "spool", 1 << 20)
    other.open()
    assert other.claim() is None
    first.release()
    # Passed over as owned; found again by the next scan (a slow timer in the collector).
    assert other.claim() is None
    other.refresh()
    again = other.claim()
    assert again is not None and list(again.records()) == [b"x"]


def test_the_cap_refuses_appends_and_says_so(tmp_path):
    spool = make(tmp_path, max_bytes=1000)
    accepted = sum(spool.append(b"y" * 100) for _ in range(20))
    # 8 bytes of file header + 9 x (8-byte record header + 100) = 980; a tenth passes 1000.
    assert accepted == 9
    assert not spool.has_room(100)
    assert spool.size() == len(MAGIC) + 9 * 108


def test_a_dead_writers_segment_is_replayed_and_a_torn_tail_ignored(tmp_path):
    directory = tmp_path / "spool"
    writer = f"""
import os, sys
sys.path.insert(0, {str(os.getcwd())!r})
from tracker.spool import Spool
s = Spool({str(directory)!r}, 1 << 20)
s.open()
for i in range(10):
    s.append(b"record-%d" % i)
s.sync()
# Half a record, as if the process died in the middle of write().
os.write(s._active.fd, b"\\x00\\x00\\x00\\x40\\x00\\x00")
os._exit(137)
"""
    subprocess.run([sys.executable, "-c", writer], check=False)
    (path,) = directory.glob("*.seg")
    assert is_segment(path)
    spool = Spool(directory, 1 << 20)
    spool.open()
    segment = spool.claim()
    assert segment is not None, "the dead writer's lock was not released"
    assert list(segment.records()) == [b"record-%d" % i for i in range(10)]


def test_a_corrupt_last_record_is_skipped(tmp_path):
    # Flip a bit of the last payload: its CRC no longer matches.
    _, path = corrupt(tmp_path, [b"ok-%d" % i for i in range(3)], -1)
    with path.open("rb") as fh:
        assert list(read_records(fh)) == [b"ok-0", b"ok-1"]


def test_not_a_segment(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"id": 1}\n')
    assert not is_segment(path)
    with path.open("rb") as fh, pytest.raises(CorruptSegment):
        list(read_records(fh, "events.jsonl"))


def test_existing_segments_count_towards_the_cap(tmp_path):
    first = make(tmp_path, max_bytes=10_000)
    for _ in range(50):
        first.append(b"z" * 100)
    first.close()
    second = make(tmp_path, max_bytes=10_000)
    assert second.size() == first.size()
    assert second.pending()


def test_the_cap_counts_other_writers_once_refreshed(tmp_path):
    first = make(tmp_path, max_bytes=10_000)
    second = make(tmp_path, max_bytes=10_000)
    for _ in range(60):
        assert first.append(b"a" * 100)
    # The second writer learns of the first one's growth when it re-measures.
    second.refresh()
    assert second.size() == first.size()
    assert sum(second.append(b"b" * 100) for _ in range(60)) < 40


def drain(spool: Spool) -> tuple[list[bytes], int]:
    """Seal, claim and forget every segment; return their records and damaged stretches."""
    spool.seal()
    spool.refresh()
    records, damaged = [], 0
    while (segment := spool.claim()) is not None:
        records.extend(segment.records())
        damaged += segment.damage.regions
        spool.forget(segment)
    return records, damaged


def corrupt(tmp_path, payloads: list[bytes], offset: int) -> tuple[Spool, Path]:
    """Spool ``payloads`` in one sealed segment and flip the byte at ``offset``."""
    spool = make(tmp_path)
    for payload in payloads:
        spool.append(payload)
    spool.seal()
    (path,) = (tmp_path / "spool").glob("*.seg")
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return spool, path


class DiskFullOnce(FileOps):
    """Half of the next record's write reaches the file, then the disk is full."""

    armed = False

    def write(self, fd, data):
        if not self.armed:
            return os.write(fd, data)
        self.armed = False
        os.write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_write_cut_short_by_a_full_disk_costs_no_acknowledged_record(tmp_path):
    files = DiskFullOnce()
    spool = make(tmp_path, files=files)
    for i in range(3):
        assert spool.append(b"before-%d" % i, sync=True)
    files.armed = True
    with pytest.raises(OSError):
        spool.append(b"refused" * 20, sync=True)
    for i in range(3):
        assert spool.append(b"after-%d" % i, sync=True)
    records, damaged = drain(spool)
    # Before: replay stopped at the torn record and the three acknowledged
    # "after" records were deleted with the segment.
    assert not damaged, "the failed write left a torn record behind"
    assert records == [b"before-0", b"before-1", b"before-2", b"after-0", b"after-1", b"after-2"]


class FailingSync(FileOps):
    """fdatasync fails with EIO while ``failing``."""

    failing = False

    def fdatasync(self, fd):
        if self.failing:
            raise OSError(errno.EIO, "Input/output error")
        os.fdatasync(fd)


def test_a_failed_fsync_is_not_acknowledged_and_starts_a_new_segment(tmp_path):
    files = FailingSync()
    spool = make(tmp_path, files=files)
    assert spool.append(b"kept", sync=True)
    files.failing = True
    with pytest.raises(OSError):
        spool.append(b"not-acknowledged", sync=True)
    files.failing = False
    assert spool.append(b"next", sync=True)
    assert len(list((tmp_path / "spool").glob("*.seg"))) == 2
    assert drain(spool) == ([b"kept", b"next"], 0)


def test_a_corrupt_record_in_the_middle_is_skipped_and_the_rest_replayed(tmp_path):
    middle = len(MAGIC) + 2 * 13 + 8  # the payload of record 2 (13 bytes a record)
    spool, _ = corrupt(tmp_path, [b"rec-%d" % i for i in range(5)], middle)
    segment = spool.claim()
    # Before: the CRC mismatch ended the segment and records 3 and 4 were deleted unsent.
    assert list(segment.records()) == [b"rec-0", b"rec-1", b"rec-3", b"rec-4"]
    assert (segment.damage.regions, segment.damage.bytes) == (1, 13)


def test_garbage_and_a_missing_header_are_skipped(tmp_path):
    directory = tmp_path / "spool"
    spool = make(tmp_path)
    for i in range(3):
        spool.append(b"good-%d" % i)
    spool.seal()
    (path,) = directory.glob("*.seg")
    body = path.read_bytes()[len(MAGIC) :]
    # A crash that lost the header block and left a zeroed page and garbage mid-file.
    path.write_bytes(b"\0" * 4096 + body[:14] + b"\xde\xad\xbe\xef" * 7 + body[14:])
    (directory / "00000000000000000001-1-000001.seg").write_bytes(b"")
    spool.refresh()
    seen = {}
    while (segment := spool.claim()) is not None:
        seen[segment.path.name] = (list(segment.records()), segment.damage)
        spool.forget(segment)
    empty, damaged = seen["00000000000000000001-1-000001.seg"], seen[path.name]
    assert empty[0] == [] and not empty[1].header
    assert damaged[0] == [b"good-0", b"good-1", b"good-2"]
    assert damaged[1].regions == 2 and not damaged[1].header


class Recording(FileOps):
    """The real calls, with the renames and fsyncs written down in order."""

    def __init__(self):
        self.calls = []

    def rename(self, src, dst):
        self.calls.append("rename")
        os.rename(src, dst)

    def fsync(self, fd):
        self.calls.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        os.fsync(fd)


def test_a_new_segment_is_durable_by_name(tmp_path):
    files = Recording()
    spool = make(tmp_path, files=files)
    spool.append(b"x", sync=True)
    # Without the directory fsync a power cut can forget the segment's name, and
    # with it every durable record acknowledged from that segment.
    assert files.calls == ["rename", "fsync dir"]


def test_the_replay_loop_does_not_scan_the_directory(tmp_path, monkeypatch):
    spool = make(tmp_path)
    spool.append(b"a")
    spool.seal()

    def no_glob(self, pattern):
        raise AssertionError("directory scanned outside refresh()")

    monkeypatch.setattr(type(tmp_path), "glob", no_glob)
    assert spool.pending()
    segment = spool.claim()
    assert list(segment.records()) == [b"a"]
    spool.forget(segment)
    assert not spool.pending() and spool.size() == 0


def test_the_oldest_record_age(tmp_path):
    spool = make(tmp_path)
    assert spool.oldest_age() == 0.0
    spool.append(b"a")
    (path,) = (tmp_path / "spool").glob("*.seg")
    born = int(path.name.split("-")[0])
    assert spool.oldest_age(born + 5 * 10**9) == 5.0


def test_both_collectors_share_the_spool_block_with_their_own_defaults():
    from collectors.banker.options import BankerOptions
    from collectors.kafka.options import KafkaOptions

    kafka = KafkaOptions().fields["spool"].schema
    banker = BankerOptions().fields["spool"].schema
    assert isinstance(kafka, SpoolOptions) and isinstance(banker, SpoolOptions)
    assert asdict(kafka.load({"directory": "/s"})) == {
        "directory": "/s",
        "max_bytes": 1 << 30,
        "segment_bytes": 16 << 20,
        "sync_interval": 1.0,
        "quarantine_directory": None,
    }
    assert asdict(banker.load({"directory": "/s"})) == {
        "directory": "/s",
        "max_bytes": 256 << 20,
        "segment_bytes": 4 << 20,
    }
    # One schema: the same refusals, word for word, and no kafka-only keys in the banker's.
    bad = {"directory": "", "max_bytes": 1024, "segment_bytes": 1}
    with pytest.raises(ValidationError) as kafka_error:
        kafka.load(bad)
    with pytest.raises(ValidationError) as banker_error:
        banker.load(bad)
    assert kafka_error.value.messages == banker_error.value.messages
    assert sorted(banker_error.value.messages) == ["directory", "max_bytes", "segment_bytes"]
    with pytest.raises(ValidationError, match="sync_interval"):
        banker.load({"directory": "/s", "sync_interval": 1.0})
