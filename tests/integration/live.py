"""Real processes for integration tests: a Kafka broker and gunicorn serving the tracker.

The broker is started by the project's own script on port 19092 with its data
under ``var/kafka-test`` (wiped first), so a developer's ``make run`` broker on
9092 is left alone. Each test gets its own topics.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from confluent_kafka import Consumer

from tests import ROOT

KAFKA_SCRIPT = ROOT / "scripts" / "kafka" / "kafka.sh"
KAFKA_PORT = int(os.environ.get("TEST_KAFKA_PORT", "19092"))
BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"


class Broker:
    """The test broker, driven through scripts/kafka/kafka.sh."""

    def __init__(self) -> None:
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(KAFKA_PORT),
            "KAFKA_CONTROLLER_PORT": str(KAFKA_PORT + 1),
            "KAFKA_DATA_DIR": str(ROOT / "var" / "kafka-test"),
            # A loaded machine restarts the broker slowly; a test that waits for it
            # should not fail on kafka.sh's interactive default of 60 s.
            "KAFKA_STARTUP_TIMEOUT": os.environ.get("KAFKA_STARTUP_TIMEOUT", "180"),
        }
        self.bootstrap = BOOTSTRAP

    def run(self, command: str) -> None:
        """Run ``kafka.sh <command>`` and fail loudly if it fails."""
        subprocess.run(["bash", str(KAFKA_SCRIPT), command], env=self.env, check=True)

    def up(self) -> None:
        """Start the broker (idempotent) and wait until it answers."""
        self.run("up")

    def down(self) -> None:
        """Stop the broker cleanly (idempotent)."""
        self.run("down")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:\tZ") for line in fh)
    except FileNotFoundError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (one at a time, the kernel may hand out one twice)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def write_config(tmp_path: Path, suffix: str, durable: tuple[str, ...] = ()) -> Path:
    """Write the shipped config with topics renamed ``<topic>-<suffix>``.

    Paths named in ``durable`` get the ``durable`` delivery class. The banker
    is left out (it needs Redis): tests/integration/test_banker.py puts it back.
    """
    data = yaml.safe_load((ROOT / "config" / "tracker.yaml").read_text())
    del data["collectors"]["banker"]
    for block in data["paths"].values():
        if "banker" in block.get("collectors", ()):
            block["collectors"].remove("banker")
    for name in durable:
        data["paths"][name]["delivery"] = {"class": "durable", "timeout": 5}
    for block in data["collectors"].values():
        if block["type"] == "kafka":
            block["topic"] = f"{block['topic']}-{suffix}"
            for routing in block.get("events", {}).values():
                routing["topic"] = f"{routing['topic']}-{suffix}"
    path = tmp_path / "tracker.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Server:
    """``tracker serve`` (gunicorn) as a child process, on a free port."""

    def __init__(
        self, tmp_path: Path, broker: Broker, durable: tuple[str, ...] = (), **env: str
    ) -> None:
        self.suffix = uuid.uuid4().hex[:8]
        self.port, self.admin_port = free_ports(2)
        self.tmp_path = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.log_dir = tmp_path / "events"
        self.config = write_config(tmp_path, self.suffix, durable)
        self.env = {
            **os.environ,
            "TRACKER_CONFIG": str(self.config),
            "TRACKER_BIND": f"127.0.0.1:{self.port}",
            "TRACKER_ADMIN_BIND": f"127.0.0.1:{self.admin_port}",
            "TRACKER_WORKERS": "2",
            "TRACKER_KAFKA_BOOTSTRAP": broker.bootstrap,
            "TRACKER_LOG_DIR": str(self.log_dir),
            "TRACKER_SPOOL_DIR": str(tmp_path / "spool"),
            "TRACKER_DRAIN_SECONDS": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            **env,
        }
        self.proc: subprocess.Popen | None = None
        self.output = tmp_path / "server.log"

    def topic(self, name: str) -> str:
        """This server's name for a shipped topic."""
        return f"{name}-{self.suffix}"

    def setup_topics(self) -> None:
        """Create the topics with ``tracker setup``, as an operator would."""
        subprocess.run(
            [sys.executable, "-m", "tracker", "setup"], env=self.env, check=True, cwd=ROOT
        )

    def start(self, args: Iterable[str] = ("-m", "tracker", "serve")) -> Server:
        """Start the server and wait until it answers /healthz."""
        out = self.output.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, *args], env=self.env, cwd=ROOT, stdout=out, stderr=out
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.output.read_text()[-3000:]}")
            try:
                if self.get("/healthz")[0] == 200 and len(self.workers()) == self.worker_count:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not start: {self.output.read_text()[-3000:]}")

    @property
    def worker_count(self) -> int:
        return int(self.env["TRACKER_WORKERS"])

    def workers(self) -> set[int]:
        """PIDs of the gunicorn master's live worker processes."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout
        return {int(p) for p in out.split() if alive(int(p))}

    def get(self, target: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        """One GET on a new connection."""
        return request(self.port, "GET", target, headers=headers)

    def admin_get(self, target: str) -> tuple[int, dict, bytes]:
        """One GET on the admin port (``/metrics``), on a new connection."""
        return request(self.admin_port, "GET", target)

    def metric(self, name: str, **labels: str) -> float:
        """Sum a counter or gauge from /metrics over the samples matching ``labels``."""
        _, _, text = self.admin_get("/metrics")
        total = 0.0
        for line in text.decode().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def spool_files(self) -> list[Path]:
        """The spool segments currently on disk."""
        return sorted(Path(self.env["TRACKER_SPOOL_DIR"]).rglob("*.seg"))

    def stop(self) -> int | None:
        """SIGTERM the master and wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def request(
    port: int,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict, bytes]:
    """Send one request (on ``conn`` if given); header names come back lower-cased."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        if own:
            conn.close()


def raw(port: int, data: bytes, timeout: float = 10) -> int | None:
    """Send raw bytes; return the status code, or None if the server closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])


def send_all(port: int, requests: list[tuple], threads: int = 4) -> list[tuple[int, dict, bytes]]:
    """Send ``(method, target, body, headers)`` requests over keep-alive connections."""

    def worker(chunk: list[tuple]) -> list[tuple[int, dict, bytes]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            return [request(port, *r, conn=conn) for r in chunk]
        finally:
            conn.close()

    chunks = [requests[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(worker, chunks))
    ordered: list = [None] * len(requests)
    for i, chunk_results in enumerate(results):
        ordered[i::threads] = chunk_results
    return ordered


def consume(
    topics: list[str],
    expected: int,
    timeout: float = 60.0,
    settle: float = 3.0,
    bootstrap: str = BOOTSTRAP,
) -> list[tuple[str, bytes | None, dict]]:
    """Read ``topics`` from the start: ``(topic, key, event)`` for every message.

    Reads until ``expected`` messages have arrived and then ``settle`` more
    seconds pass without another (so duplicates would be seen), or until
    ``timeout``.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    messages: list[tuple[str, bytes | None, dict]] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if len(messages) >= expected and time.monotonic() - last > settle:
                    break
                continue
            if msg.error():
                continue
            messages.append((msg.topic(), msg.key(), json.loads(msg.value())))
            last = time.monotonic()
    finally:
        consumer.close()
    return messages


def tmpfs(directory: Path, size: str):
    """Mount a tmpfs of ``size`` on ``directory``, a disk that really fills; yield it, unmount.

    Skips the test, saying why, where mounting is not allowed (it needs root).
    """
    import pytest

    directory.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield directory
    subprocess.run(["umount", "-l", str(directory)], check=False)
