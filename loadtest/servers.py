"""The processes a benchmark run starts: Kafka, Redis, the tracker and the two references.

Each is started from the project's own scripts or with the tools that
``loadtest/bench.sh`` installs, listens on 127.0.0.1 only and is stopped by the
run that started it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from loadtest.scenarios import CLICK_KEYS

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port(pair: bool = False) -> int:
    """Return a free port on 127.0.0.1 (with ``pair``, one whose successor is free too)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair or _free(port + 1):
            return port
    raise RuntimeError("no free port pair on 127.0.0.1")


def cpu_seconds(pids: list[int]) -> float:
    """Return the CPU time (user + system, every thread) ``pids`` have used, in seconds."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def with_children(pid: int) -> list[int]:
    """Return ``pid`` and its direct children (gunicorn's workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *map(int, children)]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Process:
    """A server started in its own session, its output in a log file."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict | None = None) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        """Wait until ``url`` answers at all; fail with the log's tail if the server died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}{self.tail()}")
            try:
                urllib.request.urlopen(url, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {url} in {timeout:.0f} s{self.tail()}")

    def tail(self) -> str:
        """Return the last lines of the log, for error messages."""
        lines = self.log.read_text(errors="replace").splitlines()[-20:]
        return "\n--- " + str(self.log) + "\n" + "\n".join(lines)

    def cpu_seconds(self) -> float:
        """Return the CPU time the server and its workers have used so far."""
        return cpu_seconds(with_children(self.popen.pid))

    def worker_rss_mib(self) -> list[float]:
        """Return the resident memory of each child (worker) of this process, in MiB."""
        out = subprocess.run(
            ["ps", "-o", "rss=", "--ppid", str(self.popen.pid)], capture_output=True, text=True
        ).stdout
        return [int(kib) / 1024 for kib in out.split()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig``, wait for the exit (SIGKILL after ``timeout``); return the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


class Scripted:
    """A server run by one of the project's scripts (``up``/``down``), data wiped at each start.

    ``nice`` lowers its CPU priority from ``up`` on.
    """

    script = ""  # relative to the repository
    pid_file = ""  # relative to the data directory

    def __init__(self, data_dir: Path, env: dict[str, str], nice: int = 0) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, **env}
        self.nice = nice

    def _run(self, command: str) -> None:
        nice = ["nice", "-n", str(self.nice)] if self.nice and command == "up" else []
        script = ROOT / self.script
        subprocess.run([*nice, "bash", str(script), command], env=self.env, check=True)

    def up(self) -> None:
        """Stop one left by an earlier run, wipe its data, start a fresh one."""
        self._run("down")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self._run("up")

    def down(self) -> None:
        """Stop it."""
        self._run("down")

    def cpu_seconds(self) -> float:
        """Return the CPU time the server has used so far (0 when it is not running)."""
        try:
            pid = int((self.data_dir / self.pid_file).read_text())
        except (OSError, ValueError):
            return 0.0
        return cpu_seconds([pid])


class Broker(Scripted):
    """A Kafka broker of its own (``scripts/kafka/kafka.sh``).

    ``nice`` lowers the broker's CPU priority. In production the broker runs on
    machines of its own; here it shares the two cores with the servers under
    test, and only the tracker uses it, so at equal priority its work (about
    as much CPU per event as the tracker's own at librdkafka's default 5 ms
    linger) would count against the tracker alone and not the references.
    """

    script = "scripts/kafka/kafka.sh"
    pid_file = "kafka.pid"

    def __init__(self, port: int, data_dir: Path, nice: int = 0) -> None:
        self.bootstrap = f"127.0.0.1:{port}"
        env = {
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(port + 1),
            "KAFKA_DATA_DIR": str(data_dir),
        }
        super().__init__(data_dir, env, nice)

    def message_count(self, topics: set[str]) -> int:
        """Count the messages in ``topics`` from their partitions' offsets."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "bench-count"})
        try:
            metadata = consumer.list_topics(timeout=10)
            total = 0
            for topic in sorted(topics):
                for partition in metadata.topics[topic].partitions:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=10
                    )
                    total += high - low
            return total
        finally:
            consumer.close()


class Redis(Scripted):
    """A Redis of its own for the banker (``scripts/redis/redis.sh``), niced like the broker."""

    script = "scripts/redis/redis.sh"
    pid_file = "redis.pid"

    def __init__(self, port: int, data_dir: Path, nice: int = 0) -> None:
        self.url = f"redis://127.0.0.1:{port}/0"
        env = {"REDIS_PORT": str(port), "REDIS_DATA_DIR": str(data_dir)}
        super().__init__(data_dir, env, nice)


class Nginx(Process):
    """The nginx ``empty_gif`` reference (Debian nginx-light), config generated into var/."""

    def __init__(self, nginx_bin: str, port: int, workers: int, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        conf = work / "nginx.conf"
        conf.write_text(
            f"""# Generated by loadtest/servers.py for the benchmark; edits are overwritten.
daemon off;
worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ empty_gif; }}
    }}
}}
"""
        )
        super().__init__("nginx", [nginx_bin, "-p", str(work), "-c", str(conf)], work / "out.log")
        self.wait_http(f"http://127.0.0.1:{port}/")


class BareFalcon(Process):
    """The bare Falcon pixel (``loadtest.pixel``) on the tracker's gunicorn worker class."""

    def __init__(self, port: int, workers: int, work: Path) -> None:
        command = [
            str(BIN / "python"),
            "-m",
            "gunicorn",
            "--no-control-socket",
            "-k",
            "tracker.workers.MeinheldWorker",
            f"--workers={workers}",
            f"--bind=127.0.0.1:{port}",
            "--keep-alive=5",
            "--worker-connections=2000",
            "--log-level=warning",
            "loadtest.pixel:app",
        ]
        super().__init__("bare Falcon", command, work / "falcon.log")
        self.wait_http(f"http://127.0.0.1:{port}/")


class TrackerServer(Process):
    """``tracker serve`` with meinheld workers, on the benchmark's broker and Redis."""

    def __init__(
        self, config: Path, port: int, workers: int, bootstrap: str, redis_url: str, work: Path
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        # /metrics answers on the admin listener only.
        admin_port = free_port()
        self.admin_url = f"http://127.0.0.1:{admin_port}"
        self.env = {
            "TRACKER_CONFIG": str(config),
            "TRACKER_BIND": f"127.0.0.1:{port}",
            "TRACKER_ADMIN_BIND": f"127.0.0.1:{admin_port}",
            "TRACKER_WORKERS": str(workers),
            "TRACKER_WORKER_CLASS": "meinheld",
            "TRACKER_KAFKA_BOOTSTRAP": bootstrap,
            "TRACKER_REDIS_URL": redis_url,
            "TRACKER_LOG_DIR": str(work / "log"),
            "TRACKER_SPOOL_DIR": str(work / "spool"),
            "TRACKER_CLICK_KEYS": CLICK_KEYS,
            "TRACKER_DRAIN_SECONDS": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
        }
        subprocess.run(
            [str(BIN / "tracker"), "setup"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        super().__init__("tracker", [str(BIN / "tracker"), "serve"], work / "tracker.log", self.env)
        self.wait_http(self.url + "/readyz")

    def wait_idle(self, timeout: float = 120.0) -> tuple[dict[tuple[str, str], float], bool]:
        """Wait until the counters stop moving; return them and whether they did.

        Requests a load tool gave up on may still be queued in the workers; an
        overloaded run must not spill into the next one, nor into the count.
        """
        deadline = time.monotonic() + timeout
        previous: dict | None = None
        while True:
            try:
                counts = self.counters()
            except OSError:
                counts = None
            if counts is not None and counts == previous:
                return counts, True
            if time.monotonic() > deadline:
                if counts is None:
                    raise RuntimeError(f"the tracker's /metrics did not answer{self.tail()}")
                return counts, False
            previous = counts
            time.sleep(0.5)

    def counters(self) -> dict[tuple[str, str], float]:
        """Return ``tracker_requests_total`` by (path, outcome), summed over the workers."""
        with urllib.request.urlopen(self.admin_url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        counts: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "tracker_requests":
                continue
            for sample in family.samples:
                if sample.name == "tracker_requests_total":
                    key = (sample.labels["path"], sample.labels["outcome"])
                    counts[key] = counts.get(key, 0.0) + sample.value
        return counts
