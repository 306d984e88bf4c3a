"""The kafka collector's supervised background thread, without a broker."""

from __future__ import annotations

import errno
import os
import socket
import time

import pytest

from collectors.kafka import KafkaCollector
from collectors.kafka.faults import THREAD_RESTARTS
from tracker.event import Event


def unreachable() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


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
    collector.open()
    yield collector
    collector.close(0.5)


def restarts(collector) -> float:
    return THREAD_RESTARTS.labels(collector.name)._value.get()


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    return predicate()


def test_a_failed_fsync_does_not_stop_the_background_thread(collector, monkeypatch):
    events = [Event(type="hit", path="hit") for _ in range(3)]
    for event in events[:2]:
        collector.collect(event)  # no broker: spooled
    real = os.fdatasync
    failed = []

    def fails_once(fd):
        if not failed:
            failed.append(fd)
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fails_once)
    assert wait_for(lambda: restarts(collector) == 1)
    collector.collect(events[2])
    # Before: the exception killed the thread; nothing was synced or replayed
    # again and healthy() still said True.
    assert collector._poller.is_alive()
    assert wait_for(lambda: collector._fault is None), "the loop did not resume"
    assert collector.healthy()
    collector.spool.seal()
    collector.spool.refresh()
    records = []
    while (segment := collector.spool.claim()) is not None:
        records.extend(segment.records())
        collector.spool.forget(segment)
    assert records == [e.to_json() for e in events], "spooled events were lost"


def test_a_loop_that_keeps_failing_makes_the_collector_unready_with_the_reason(
    collector, monkeypatch
):
    def broken():
        raise OSError(errno.EIO, "Input/output error", "spool")

    monkeypatch.setattr(collector.spool, "refresh", broken)
    assert wait_for(lambda: not collector.healthy(), 10)
    assert collector._poller.is_alive()
    assert restarts(collector) >= 3
    assert collector.status().startswith(
        "background thread failing: OSError: [Errno 5] Input/output error: 'spool'"
    )
    monkeypatch.undo()
    # The backoff is at most 5 s; the next turn succeeds and readiness returns.
    assert wait_for(collector.healthy, 10)
    assert "failing" not in collector.status()
