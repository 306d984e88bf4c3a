"""SIGKILL of one worker: the master survives and replaces it; the others keep serving.

Also reproduces why the project ships its own worker class: with meinheld's
stock worker the same kill takes down the master and every worker.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.integration.live import alive, request

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STOCK_WORKER = "meinheld.gmeinheld.MeinheldWorker"


class Load:
    """Send impressions from a thread until stopped; record every outcome with its time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.outcomes: list[tuple[float, int | str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                status, _, _ = request(self.port, "GET", f"/imp?cid=kill&iid=k-{i}")
            except OSError as ex:
                status = type(ex).__name__
            self.outcomes.append((time.monotonic(), status))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)

    def since(self, moment: float) -> list[int | str]:
        return [status for t, status in self.outcomes if t >= moment]


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_killed_worker_is_replaced_and_the_others_keep_serving(server_factory):
    server = server_factory(TRACKER_WORKERS="3")
    server.setup_topics()
    server.start()
    before = server.workers()
    assert len(before) == 3

    with Load(server.port) as load:
        time.sleep(1.0)
        victim = sorted(before)[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        assert wait_for(lambda: victim not in server.workers() and len(server.workers()) == 3)
        replaced_at = time.monotonic()
        time.sleep(2.0)

    after = server.workers()
    assert server.proc.poll() is None, "the master died"
    assert len(after) == 3
    assert after - before, "no new worker was spawned"
    assert before - after == {victim}
    # The surviving workers were never interrupted.
    assert before - {victim} <= after
    # Every request after the replacement succeeded, and there were plenty.
    settled = load.since(replaced_at)
    assert len(settled) > 50
    assert set(settled) == {200}
    # Around the kill, only a request the dead worker held can fail.
    around = load.since(killed_at)
    assert sum(1 for s in around if s != 200) <= 2
    assert f"Worker (pid:{victim}) was sent SIGKILL" in server.output.read_text()


def test_stock_meinheld_worker_takes_the_master_down(server_factory):
    """The trap this project's worker class avoids, reproduced."""
    server = server_factory(TRACKER_WORKERS="2")
    server.setup_topics()
    gunicorn = ("-m", "gunicorn", "-c", "config/gunicorn.conf.py", "--worker-class", STOCK_WORKER)
    server.start(gunicorn)
    workers = server.workers()
    os.kill(sorted(workers)[0], signal.SIGKILL)
    assert wait_for(lambda: server.proc.poll() is not None), "the master survived"
    assert wait_for(lambda: not any(alive(pid) for pid in workers))
    assert "TypeError: _error() got an unexpected keyword argument" in server.output.read_text()
    with pytest.raises(OSError):
        server.get("/healthz")
