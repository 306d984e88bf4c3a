"""docs/quickstart.md works as written: every ``sh`` block, in order, on a fresh clone.

The clone is of this repository's committed HEAD. Ports are the only change: the
page's 127.0.0.1:8080, 9090 and 8099 become free ones, and ``make run`` finds the
session's test broker already up (same data directory and port), so it starts none.
A block fenced ``sh background`` runs on while the next ones do, as in a second
terminal; a new ``make run`` first stops the previous one with SIGINT, as Ctrl-C does.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests import ROOT
from tests.integration.live import free_ports

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What each block must print (a block is found by a piece of its text).
EXPECTED = {
    "make install": "",
    "/imp?cid=campaign-1": "200 image/gif",
    "tail tracker-impressions": '"campaign_id": "campaign-1"',
    "cid=bad%20id": "200 invalid_fields",
    "9090/metrics": 'tracker_requests_total{outcome="accepted",path="impression"}',
    "check-config my-tracker.yaml\n": "my-tracker.yaml: OK",
    "plan=pro&ref=newsletter": "204",
    "tail signups": '"referrer": "newsletter"',
    "pip install ./examples/tracker-webhook": "Successfully installed tracker-webhook",
    "plan=free": "204",
}


def blocks() -> list[tuple[bool, str]]:
    """``(background, text)`` of each ``sh`` block of the quickstart, in order."""
    text = (ROOT / "docs" / "quickstart.md").read_text()
    found = re.findall(r"```sh( background)?\n(.*?)```", text, flags=re.S)
    return [(bool(background), body) for background, body in found]


class Session:
    """A shell session of the quickstart's reader: a directory and background jobs."""

    def __init__(self, tmp_path: Path, env: dict[str, str], ports: dict[str, str]) -> None:
        self.cwd = tmp_path
        self.tmp_path = tmp_path
        self.env = env
        self.ports = ports
        self.jobs: list[tuple[str, subprocess.Popen, Path]] = []

    def text(self, block: str) -> str:
        for old, new in self.ports.items():
            block = block.replace(old, new)
        return block.replace("https://github.com/your-org/tracker.git", str(ROOT))

    def run(self, block: str) -> str:
        """Run a block to its end; return its output, fail on a non-zero exit."""
        marker = self.tmp_path / "cwd"
        script = f"set -euo pipefail\n{self.text(block)}\npwd > {marker}\n"
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=600,
        )
        assert result.returncode == 0, f"{block}\n-> {result.stdout[-3000:]}{result.stderr[-3000:]}"
        self.cwd = Path(marker.read_text().strip())
        return result.stdout

    def start(self, block: str) -> None:
        """Start a block in the background (a second terminal)."""
        if block.strip().endswith("make run"):
            for name, proc, _ in self.jobs:
                if name.endswith("make run") and proc.poll() is None:
                    stop(proc)
        log = self.tmp_path / f"job-{len(self.jobs)}.log"
        proc = subprocess.Popen(
            ["bash", "-c", self.text(block)],
            cwd=self.cwd,
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.jobs.append((block.strip(), proc, log))

    def output(self, name: str) -> str:
        """What the background jobs whose command contains ``name`` printed."""
        return "".join(log.read_text() for job, _, log in self.jobs if name in job)

    def close(self) -> None:
        for _, proc, _ in self.jobs:
            stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C the job's process group, then wait for it."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_quickstart_runs_as_written(tmp_path, broker):
    *page_ports, redis_port, loader_port = free_ports(5)
    ports = {
        f"127.0.0.1:{page}": f"127.0.0.1:{port}"
        for page, port in zip((8080, 9090, 8099), page_ports, strict=True)
    }
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TRACKER_", "PROMETHEUS_", "VIRTUAL_ENV", "PYTEST_"))
    }
    env.update(
        TRACKER_BIND=ports["127.0.0.1:8080"],
        TRACKER_ADMIN_BIND=ports["127.0.0.1:9090"],
        # `make run` starts the reporting loader too: its admin port, free.
        TRACKER_LOADER_ADMIN_BIND=f"127.0.0.1:{loader_port}",
        TRACKER_WORKERS="1",
        TRACKER_KAFKA_BOOTSTRAP=broker.bootstrap,
        KAFKA_PORT=broker.env["KAFKA_PORT"],
        KAFKA_CONTROLLER_PORT=broker.env["KAFKA_CONTROLLER_PORT"],
        KAFKA_DATA_DIR=broker.env["KAFKA_DATA_DIR"],
        # `make run` starts the clone's own Redis for the banker: on a free port.
        REDIS_PORT=str(redis_port),
        TRACKER_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
    )
    session = Session(tmp_path, env, ports)
    outputs: dict[str, str] = {}
    try:
        for background, block in blocks():
            if background:
                session.start(block)
                continue
            out = session.run(block)
            for key in EXPECTED:
                if key in block:
                    outputs[key] = out
        deadline = time.monotonic() + 10
        while '"plan": "free"' not in session.output("receiver.py"):
            assert time.monotonic() < deadline, session.output("receiver.py")
            time.sleep(0.2)
    finally:
        session.close()
        subprocess.run(["make", "-s", "redis-down"], cwd=session.cwd, env=env, check=False)
    assert sorted(outputs) == sorted(EXPECTED), "a block named in EXPECTED is gone"
    for key, expected in EXPECTED.items():
        assert expected in outputs[key], f"{key}: {outputs[key]!r}"
    assert '"type": "signup"' in session.output("receiver.py")
