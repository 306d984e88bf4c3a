"""Real Redis for tests, started and stopped by the project's scripts/redis/redis.sh.

The single node listens on ``TEST_REDIS_PORT`` (16379) with its data under
``var/redis-test``; the three-master cluster on ``TEST_REDIS_CLUSTER_PORT``
(17001-17003, bus ports +10000) under ``var/redis-cluster-test``. A developer's
``make redis-up`` node on 6379 is left alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tests import ROOT

SCRIPT = ROOT / "scripts" / "redis" / "redis.sh"
PORT = int(os.environ.get("TEST_REDIS_PORT", "16379"))
CLUSTER_PORT = int(os.environ.get("TEST_REDIS_CLUSTER_PORT", "17001"))


class RedisNode:
    """The test Redis, single node or cluster, driven through redis.sh."""

    def __init__(self, cluster: bool = False) -> None:
        self.cluster = cluster
        self.env = {
            **os.environ,
            "REDIS_PORT": str(PORT),
            "REDIS_DATA_DIR": str(ROOT / "var" / "redis-test"),
            "REDIS_CLUSTER_PORT": str(CLUSTER_PORT),
            "REDIS_CLUSTER_DIR": str(ROOT / "var" / "redis-cluster-test"),
        }
        port = CLUSTER_PORT if cluster else PORT
        self.url = f"redis://127.0.0.1:{port}/0"

    def run(self, command: str) -> None:
        """Run ``redis.sh <command>`` and fail loudly if it fails."""
        subprocess.run(
            ["bash", str(SCRIPT), command], env=self.env, check=True, stdout=subprocess.DEVNULL
        )

    def up(self) -> None:
        """Start the node or the cluster (idempotent) and wait until it answers."""
        self.run("cluster-up" if self.cluster else "up")

    def fresh(self) -> None:
        """Stop, wipe the data directory, start: every session begins empty."""
        self.down()
        shutil.rmtree(self.env["REDIS_DATA_DIR"], ignore_errors=True)
        self.up()

    def down(self) -> None:
        """Stop it cleanly; the single node keeps its data for the next ``up``."""
        self.run("cluster-down" if self.cluster else "down")

    def restart(self) -> None:
        """Stop and start again, keeping the data (every master of a cluster)."""
        if self.cluster:
            self.run("cluster-restart")
        else:
            self.down()
            self.up()

    def client(self):
        """A redis-py client of this node or cluster."""
        from collectors.banker.ledger import connect

        return connect(self.url, self.cluster, 5.0)
