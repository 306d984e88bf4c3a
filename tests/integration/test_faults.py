"""Nothing lost: broker outage, SIGTERM under load, SIGKILL on a durable path, bounded memory.

Each test runs real gunicorn against the real broker, drives paced load with
a unique id per request, and then reads the topic: every request answered 2xx
must be there exactly once, by id.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import urllib.parse
from collections import Counter

import pytest

from tests.integration.live import consume, request

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class PacedLoad:
    """Send requests at about ``rate`` per second from one thread, recording each outcome.

    ``make(i)`` returns ``(id, method, target, body, headers)``. A refused or
    broken connection is recorded as an error and retried on a new one.
    """

    def __init__(self, port: int, rate: float, make, threads: int = 2) -> None:
        self.port = port
        self.rate = rate / threads
        self.make = make
        self.outcomes: dict[str, int | str] = {}
        self.stop = threading.Event()
        self.counter = iter(range(10**9))
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self) -> None:
        conn = None
        next_at = time.monotonic()
        while not self.stop.is_set():
            with self.lock:
                i = next(self.counter)
            event_id, method, target, body, headers = self.make(i)
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                status, _, _ = request(self.port, method, target, body, headers, conn=conn)
            except (OSError, http.client.HTTPException) as ex:
                status = type(ex).__name__
                if conn is not None:
                    conn.close()
                conn = None
            self.outcomes[event_id] = status
            next_at += 1 / self.rate
            time.sleep(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> PacedLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(20)

    def accepted(self) -> set[str]:
        return {i for i, status in self.outcomes.items() if status == 200}


def impression(prefix: str):
    def make(i: int):
        event_id = f"{prefix}-{i}"
        query = urllib.parse.urlencode({"cid": "c-1", "iid": event_id, "price": "1.5"})
        return event_id, "GET", f"/imp?{query}", None, {}

    return make


def conversion(prefix: str):
    def make(i: int):
        event_id = f"{prefix}-{i}"
        body = json.dumps({"cid": "c-9", "order": event_id, "value": "10.00"}).encode()
        return event_id, "POST", "/conv", body, {"Content-Type": "application/json"}

    return make


def wait_until(predicate, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def topic_ids(server, topics: list[str], expected: int, dimension: str) -> Counter:
    messages = consume([server.topic(t) for t in topics], expected, timeout=120, settle=5)
    return Counter(event["dimensions"][dimension] for _, _, event in messages)


def assert_exactly_once(seen: Counter, accepted: set[str]) -> None:
    missing = accepted - set(seen)
    duplicated = {i: n for i, n in seen.items() if n > 1}
    assert not missing, f"{len(missing)} accepted events missing, e.g. {sorted(missing)[:5]}"
    assert not duplicated, f"duplicates: {list(duplicated.items())[:5]}"
    assert set(seen) == accepted


def test_broker_outage_of_30s_under_load(server_factory, live_broker):
    server = server_factory()
    server.setup_topics()
    server.start()
    with PacedLoad(server.port, 120, impression("outage")) as load:
        time.sleep(5)
        live_broker.down()
        time.sleep(10)
        # Still ready: the broker is down but the spool has room.
        _, _, ready = server.get("/readyz")
        assert json.loads(ready)["status"] == "ready"
        assert "broker down, spooling" in json.loads(ready)["collectors"]["kafka"]
        time.sleep(22)
        live_broker.up()
        time.sleep(8)
    accepted = load.accepted()
    assert len(accepted) > 4000
    assert len(accepted) == len(load.outcomes), "a request failed during the outage"
    assert wait_until(lambda: not server.spool_files(), 90), "the spool did not drain"
    seen = topic_ids(server, ["tracker-impressions"], len(accepted), "impression_id")
    assert_exactly_once(seen, accepted)
    assert server.metric("tracker_spooled_total", collector="kafka") > 0
    assert server.metric("tracker_replayed_total", collector="kafka") > 0


def test_sigterm_under_load_loses_nothing(server_factory):
    server = server_factory(TRACKER_WORKERS="2", TRACKER_DRAIN_SECONDS="3")
    server.setup_topics()
    server.start()
    with PacedLoad(server.port, 300, impression("term")) as load:
        time.sleep(3)
        server.proc.send_signal(signal.SIGTERM)
        terminated = time.monotonic()
        # Draining: still serving, but no longer ready.
        assert wait_until(lambda: server.get("/readyz")[0] == 503, 2.5, step=0.1)
        assert json.loads(server.get("/readyz")[2])["status"] == "draining"
        assert server.proc.wait(40) == 0
        # The workers finished on their own, well before the master's SIGKILL deadline
        # (graceful_timeout, 25 s), although the load kept its connections alive.
        assert time.monotonic() - terminated < 20
        assert server.output.read_text().count("Worker exiting") == 2
        time.sleep(0.5)
    accepted = load.accepted()
    assert len(accepted) > 500
    # Whatever was spooled at shutdown is replayed by the next start.
    server.start()
    assert wait_until(lambda: not server.spool_files(), 60)
    seen = topic_ids(server, ["tracker-impressions"], len(accepted), "impression_id")
    assert_exactly_once(seen, accepted)


def test_sigkill_on_a_durable_path_loses_no_acknowledged_event(server_factory, live_broker):
    server = server_factory(durable=("conversion",), TRACKER_WORKERS="3")
    server.setup_topics()
    server.start()
    with PacedLoad(server.port, 100, conversion("durable"), threads=3) as load:
        # Phase 1, broker down: acknowledgements come from the fsynced spool.
        live_broker.down()
        time.sleep(4)
        victim = sorted(server.workers())[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(4)
        assert server.spool_files(), "nothing was spooled while the broker was down"
        # Phase 2, broker up: the journal is replayed to Kafka as it is written.
        live_broker.up()
        time.sleep(4)
        os.kill(sorted(server.workers())[-1], signal.SIGKILL)
        time.sleep(4)
    acknowledged = load.accepted()
    assert len(acknowledged) > 800
    # The dead workers' segments are replayed by the survivors.
    assert wait_until(lambda: not server.spool_files(), 90), "the spool did not drain"
    seen = topic_ids(server, ["tracker-conversions"], len(acknowledged), "order_id")
    missing = acknowledged - set(seen)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"


def rss_kib(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as fh:
            total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    return total


RSS_GROWTH_BOUND_KIB = 40 * 1024


def test_memory_stays_flat_while_the_broker_is_down(server_factory, live_broker):
    server = server_factory(TRACKER_WORKERS="1")
    server.setup_topics()
    server.start()
    samples: list[tuple[float, int, int]] = []
    live_broker.down()
    started = time.monotonic()
    with PacedLoad(server.port, 400, impression("flat")) as load:
        while time.monotonic() - started < 180:
            time.sleep(10)
            spool = sum(p.stat().st_size for p in server.spool_files())
            samples.append((time.monotonic() - started, rss_kib(server.workers()), spool))
    baseline = samples[1][1]  # after warm-up
    peak = max(rss for _, rss, _ in samples[1:])
    print("\nseconds  worker_rss_kib  spool_bytes")
    for t, rss, spool in samples:
        print(f"{t:7.0f}  {rss:14d}  {spool:11d}")
    print(f"RSS growth after warm-up: {peak - baseline} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB)")
    assert peak - baseline < RSS_GROWTH_BOUND_KIB
    assert samples[-1][2] > samples[1][2] > 0, "the spool did not grow"
    accepted = load.accepted()
    assert len(accepted) > 40_000
    live_broker.up()
    assert wait_until(lambda: not server.spool_files(), 120), "the spool did not drain"
    seen = topic_ids(server, ["tracker-impressions"], len(accepted), "impression_id")
    assert_exactly_once(seen, accepted)
