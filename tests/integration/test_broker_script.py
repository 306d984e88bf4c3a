"""What ``scripts/kafka/kafka.sh`` starts: the broker every test, benchmark and
``make run`` uses, sharing the tracker's cores."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.integration.live import KAFKA_SCRIPT


def broker_command(broker) -> list[str]:
    status = subprocess.run(
        ["bash", str(KAFKA_SCRIPT), "status"],
        env=broker.env,
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(status.stdout.split()[2])
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_the_broker_compiles_with_c1_only(broker):
    # A fresh broker's C2 compiles took a third of both cores for its first minute
    # under load, and the tracker's workers queued behind them (performance.md).
    command = broker_command(broker)
    assert "-XX:TieredStopAtLevel=1" in command
    assert "kafka.Kafka" in command


def test_an_unknown_jit_setting_is_refused_before_anything_starts(tmp_path):
    env = {**os.environ, "KAFKA_JIT": "c2", "KAFKA_DATA_DIR": str(tmp_path / "kafka")}
    result = subprocess.run(
        ["bash", str(KAFKA_SCRIPT), "up"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "KAFKA_JIT must be c1 or full, not 'c2'" in result.stderr
    assert not (tmp_path / "kafka").exists()
