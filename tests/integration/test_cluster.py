"""Broker failover on a real three-broker KRaft cluster (scripts/kafka/cluster.sh).

Topics with replication factor 3 and ``min.insync.replicas=2``, the producer
with ``acks=all`` and idempotence (the collector's defaults). The broker that
leads every partition of the impressions topic is SIGKILLed under load and
restarted: every event answered 200 must be in the topic exactly once, and
the fast path must keep answering during the leader election.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.live import ROOT, Server, consume, request
from tests.integration.test_faults import PacedLoad, assert_exactly_once, impression, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLUSTER_SCRIPT = ROOT / "scripts" / "kafka" / "cluster.sh"
CLUSTER_PORT = int(os.environ.get("TEST_KAFKA_CLUSTER_PORT", "19192"))
LEADER = 1


class Cluster:
    """The three nodes, driven through scripts/kafka/cluster.sh."""

    def __init__(self) -> None:
        self.env = {
            **os.environ,
            "KAFKA_CLUSTER_PORT": str(CLUSTER_PORT),
            "KAFKA_CLUSTER_CONTROLLER_PORT": str(CLUSTER_PORT + 100),
            "KAFKA_CLUSTER_DIR": str(ROOT / "var" / "kafka-cluster-test"),
        }
        self.bootstrap = ",".join(f"127.0.0.1:{CLUSTER_PORT + n}" for n in range(3))

    def run(self, *args: str) -> None:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), *args], env=self.env, check=True)


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster()
    cluster.run("down")
    subprocess.run(["rm", "-rf", cluster.env["KAFKA_CLUSTER_DIR"]], check=True)
    cluster.run("up")
    yield cluster
    cluster.run("down")


def replicated(server: Server, cluster: Cluster) -> AdminClient:
    """Replicate every topic 3 times; node 1 leads every impressions partition."""
    data = yaml.safe_load(server.config.read_text())
    data["collectors"]["kafka"]["topics"] = {
        "partitions": 3,
        "replication_factor": 3,
        "config": {"min.insync.replicas": "2"},
    }
    server.config.write_text(yaml.safe_dump(data, sort_keys=False))
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topic = NewTopic(
        server.topic("tracker-impressions"),
        num_partitions=3,
        replica_assignment=[[1, 2, 3], [1, 3, 2], [1, 2, 3]],
        config={"min.insync.replicas": "2"},
    )
    for future in admin.create_topics([topic]).values():
        future.result(60)
    server.setup_topics()  # the other topics, as an operator would
    return admin


def leaders(admin: AdminClient, topic: str) -> list[int]:
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    return [p.leader for _, p in sorted(partitions.items())]


class Latency:
    """Time one pixel request every 20 ms on its own connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[tuple[float, float, int | str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            started = time.monotonic()
            try:
                status = request(self.port, "GET", f"/imp?cid=c-1&iid=probe-{n}")[0]
            except (OSError, http.client.HTTPException) as ex:
                status = type(ex).__name__
            self.samples.append((started, time.monotonic() - started, status))
            time.sleep(0.02)

    def between(self, start: float, end: float) -> list[tuple[float, int | str]]:
        return [(took, status) for at, took, status in self.samples if start <= at <= end]


def test_killing_the_partition_leaders_broker_loses_and_duplicates_nothing(tmp_path, cluster):
    server = Server(tmp_path, SimpleNamespace(bootstrap=cluster.bootstrap), TRACKER_WORKERS="2")
    admin = replicated(server, cluster)
    topic = server.topic("tracker-impressions")
    assert leaders(admin, topic) == [LEADER] * 3
    server.start()
    latency = Latency(server.port)
    try:
        latency.thread.start()
        with PacedLoad(server.port, 150, impression("failover")) as load:
            time.sleep(5)
            killed = time.monotonic()
            cluster.run("kill", str(LEADER))
            assert wait_until(lambda: LEADER not in leaders(admin, topic), 30, step=0.2)
            elected = time.monotonic()
            time.sleep(5)
            cluster.run("start", str(LEADER))
            time.sleep(5)
        latency.stop.set()
        latency.thread.join(5)
        during = latency.between(killed, elected + 5)
        accepted = load.accepted()
        outcomes = Counter(load.outcomes.values())
        took = sorted(t for t, _ in during)
        print(
            f"\nfailover: {len(load.outcomes)} requests, leader moved off node {LEADER} "
            f"{elected - killed:.1f} s after SIGKILL; pixel latency meanwhile: "
            f"{len(took)} samples, median {took[len(took) // 2] * 1000:.1f} ms, "
            f"max {took[-1] * 1000:.1f} ms"
        )
        # The fast path never waits on the broker: nothing refused, nothing slow
        # enough to fail (the client gives up after 10 s).
        assert outcomes == Counter({200: len(load.outcomes)}), outcomes
        assert {status for _, status in during} == {200}
        assert len(during) > 20
        probes = {f"probe-{n}" for n, (_, _, s) in enumerate(latency.samples, 1) if s == 200}
        messages = consume(
            [topic], len(accepted) + len(probes), timeout=120, settle=5, bootstrap=cluster.bootstrap
        )
        seen = Counter(event["dimensions"]["impression_id"] for _, _, event in messages)
        # acks=all with min.insync.replicas=2: what the dead leader acknowledged
        # is on a surviving replica; idempotence: its retries are not written twice.
        assert_exactly_once(seen, accepted | probes)
    finally:
        latency.stop.set()
        server.stop()
