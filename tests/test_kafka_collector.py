"""The kafka collector's supervised outbox loop, without a broker."""

from __future__ import annotations

import errno
import os
import socket
import time

import pytest
from prometheus_client import REGISTRY

from collectors.kafka import KafkaCollector
from tracker.event import Event
from tracker.spool import FileOps


def unreachable() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


class FailingSync(FileOps):
    """fdatasync fails once with EIO when armed."""

    armed = False

    def fdatasync(self, fd):
        if self.armed:
            self.armed = False
            raise OSError(errno.EIO, "Input/output error")
        os.fdatasync(fd)


@pytest.fixture
def collector(tmp_path):
    options = KafkaCollector.options_schema().load(
        {
            "bootstrap_servers": unreachable(),
            "topic": "t",
            "spool": {"directory": str(tmp_path / "spool"), "sync_interval": 0.05},
            "poll_interval": 0.01,
        }
    )
    collector = KafkaCollector(f"k{time.monotonic_ns()}", options)
    collector.outbox.spool.files = FailingSync()
    collector.open()
    yield collector
    collector.close(0.5)


def restarts(collector) -> float:
    value = REGISTRY.get_sample_value(
        "tracker_outbox_restarts_total", {"collector": collector.name}
    )
    return value or 0.0


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    return predicate()


def test_a_failed_fsync_does_not_stop_the_background_thread(collector):
    events = [Event(type="hit", path="hit") for _ in range(3)]
    for event in events[:2]:
        collector.collect(event)  # no broker: spooled
    collector.outbox.spool.files.armed = True
    assert wait_for(lambda: restarts(collector) == 1)
    collector.collect(events[2])
    # Before: the exception killed the thread; nothing was synced or replayed
    # again and the collector still said it was healthy.
    assert collector.outbox.problem() is None, "the thread died"
    assert wait_for(lambda: collector.outbox.fault is None), "the loop did not resume"
    assert collector.health().ok
    assert "background thread" not in collector.health().detail
    spool = collector.outbox.spool
    spool.seal()
    spool.refresh()
    records = []
    while (segment := spool.claim()) is not None:
        records.extend(segment.records())
        spool.forget(segment)
    assert records == [e.to_json() for e in events], "spooled events were lost"


def test_a_loop_that_keeps_failing_makes_the_collector_unready_with_the_reason(
    collector, monkeypatch
):
    def broken():
        raise OSError(errno.EIO, "Input/output error", "spool")

    monkeypatch.setattr(collector.outbox.spool, "refresh", broken)
    assert wait_for(lambda: not collector.health().ok, 10)
    assert restarts(collector) >= 3
    assert collector.health().detail.startswith(
        "background thread failing: OSError: [Errno 5] Input/output error: 'spool'"
    )
    monkeypatch.undo()
    # The backoff is at most 5 s; the next turn succeeds and readiness returns.
    assert wait_for(lambda: collector.health().ok, 10)
    assert "failing" not in collector.health().detail
