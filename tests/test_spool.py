"""The durable spool: segments, ownership by flock, torn tails, the size cap."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tracker.spool import MAGIC, CorruptSegment, Spool, is_segment, read_records


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


def test_a_corrupt_record_ends_the_segment(tmp_path):
    spool = make(tmp_path)
    for i in range(3):
        spool.append(b"ok-%d" % i)
    spool.seal()
    (path,) = (tmp_path / "spool").glob("*.seg")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # flip a bit of the last payload: its CRC no longer matches
    path.write_bytes(bytes(data))
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
