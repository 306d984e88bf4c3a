"""What the banker costs on ``/bill``, and how fresh its ledger is (p50/p99).

Starts two trackers with ``tracker serve`` on free loopback ports: the shipped
config as is (``/bill`` goes to kafka, log, partner and banker), and the same
config without the banker on ``/bill``. Then:

1. cost: the same closed loop of billing notices against each (``--threads``
   keep-alive connections, ``--requests`` in all), printing requests/s and
   latency p50/p99;
2. freshness: billing notices at ``--rate`` per second against the banker
   tracker, each for its own campaign, while a watcher polls Redis for the
   campaign's ledger key; the time from sending a notice to its spend being
   visible is printed as p50/p99/max.

Needs Kafka and Redis as ``make run`` starts them (``make kafka-up redis-up``,
or ``TRACKER_KAFKA_BOOTSTRAP`` / ``TRACKER_REDIS_URL``). Traffic goes to
127.0.0.1 only; every loop is bounded in count and time.

    .venv/bin/python loadtest/banker_freshness.py --requests 4000 --rate 200 --seconds 10
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class Tracker:
    """``tracker serve`` with a variant of the shipped config, in a temp directory."""

    def __init__(self, work: Path, name: str, banker: bool, prefix: str, workers: int) -> None:
        self.port = free_port()
        data = yaml.safe_load((ROOT / "config" / "tracker.yaml").read_text())
        data["collectors"]["banker"]["key_prefix"] = prefix
        self.flush_interval = data["collectors"]["banker"]["flush_interval"]
        if not banker:
            collectors = data["paths"]["billing"]["collectors"]
            data["paths"]["billing"]["collectors"] = [c for c in collectors if c != "banker"]
        directory = work / name
        directory.mkdir(parents=True)
        config = directory / "tracker.yaml"
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        self.env = {
            **os.environ,
            "TRACKER_CONFIG": str(config),
            "TRACKER_BIND": f"127.0.0.1:{self.port}",
            "TRACKER_WORKERS": str(workers),
            "TRACKER_LOG_DIR": str(directory / "log"),
            "TRACKER_SPOOL_DIR": str(directory / "spool"),
            "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics"),
            "TRACKER_LOG_LEVEL": "WARNING",
        }
        self.log = (directory / "server.log").open("ab")
        self.proc: subprocess.Popen | None = None

    def start(self) -> Tracker:
        """Start and wait until ``/readyz`` answers 200."""
        subprocess.run(
            [sys.executable, "-m", "tracker", "setup"],
            env=self.env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracker", "serve"],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"tracker on {self.port} did not become ready (see {self.log.name})")

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def closed_loop(port: int, total: int, threads: int, tag: str) -> tuple[float, list[float]]:
    """Send ``total`` distinct notices over ``threads`` keep-alive connections."""

    def worker(offset: int) -> list[float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        latencies = []
        for i in range(offset, total, threads):
            target = f"/bill?aid={tag}-{i}&cid=bench-{i % 50}&li=li-{i % 7}&price=1.250"
            started = time.perf_counter()
            conn.request("GET", target)
            resp = conn.getresponse()
            resp.read()
            latencies.append(time.perf_counter() - started)
            if resp.status != 204:
                raise SystemExit(f"/bill answered {resp.status}")
        conn.close()
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(worker, range(threads)))
    elapsed = time.perf_counter() - started
    return total / elapsed, [x for r in results for x in r]


def freshness(port: int, client, prefix: str, rate: float, seconds: float) -> list[float]:
    """Seconds from sending each notice to its campaign's ledger key existing."""
    run = uuid.uuid4().hex[:6]
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    lock = threading.Lock()
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + seconds + 10
        while time.monotonic() < deadline:
            with lock:
                waiting = [c for c in sent if c not in seen]
            if not waiting and done.is_set():
                return
            pipe = client.pipeline(transaction=False)
            for campaign in waiting:
                pipe.exists(f"{prefix}:{{{campaign}}}:total")
            now = time.perf_counter()
            for campaign, found in zip(waiting, pipe.execute(), strict=True):
                if found:
                    seen[campaign] = now
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    count = int(rate * seconds)
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        campaign = f"fresh-{run}-{i}"
        with lock:
            sent[campaign] = time.perf_counter()
        conn.request("GET", f"/bill?aid=f-{run}-{i}&cid={campaign}&price=2.000")
        conn.getresponse().read()
    done.set()
    watcher.join()
    conn.close()
    missing = len(sent) - len(seen)
    if missing:
        print(f"  {missing} notices never became visible", file=sys.stderr)
    return [seen[c] - sent[c] for c in seen]


def report(name: str, values: list[float], unit: float = 1000.0) -> str:
    """Format p50/p99/max in milliseconds."""
    return (
        f"{name}: p50 {percentile(values, 0.5) * unit:.1f} ms, "
        f"p99 {percentile(values, 0.99) * unit:.1f} ms, max {max(values) * unit:.1f} ms"
    )


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="notices per cost run")
    parser.add_argument("--threads", type=int, default=8, help="connections of the cost run")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per tracker")
    parser.add_argument("--rate", type=float, default=200.0, help="notices/s, freshness run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the freshness run")
    args = parser.parse_args()

    from collectors.banker.ledger import connect

    redis_url = os.environ.get("TRACKER_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = connect(redis_url, False, 5.0)
    prefix = "bench" + uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="banker-bench-") as tmp:
        trackers = {
            "without banker": Tracker(Path(tmp), "plain", False, prefix, args.workers),
            "with banker": Tracker(Path(tmp), "banker", True, prefix, args.workers),
        }
        try:
            for tracker in trackers.values():
                tracker.start()
            print(f"/bill cost: {args.requests} notices, {args.threads} connections")
            for name, tracker in trackers.items():
                closed_loop(tracker.port, min(500, args.requests), args.threads, f"warm-{prefix}")
                rps, latencies = closed_loop(tracker.port, args.requests, args.threads, prefix)
                print(f"  {name:15} {rps:8.0f} req/s; " + report("latency", latencies))
            interval = trackers["with banker"].flush_interval
            print(
                f"freshness: {args.rate:.0f} notices/s for {args.seconds:.0f} s, flush {interval} s"
            )
            values = freshness(
                trackers["with banker"].port, client, prefix, args.rate, args.seconds
            )
            print("  " + report(f"{len(values)} notices, notice -> ledger", values))
            print(f"  mean {statistics.mean(values) * 1000:.1f} ms")
        finally:
            for tracker in trackers.values():
                tracker.stop()
    print(f"(ledger keys under {prefix}:* in {redis_url})")


if __name__ == "__main__":
    main()
