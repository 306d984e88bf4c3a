"""The banker end to end: real gunicorn workers, real Kafka, real Redis (single and cluster).

Two tracker instances share one Redis; billing notices with known prices come
in with exact duplicates, retries on the other instance and AUDIT renders;
Redis is restarted in the middle. Each campaign's and line item's spend must
equal the sum of its distinct billable notices, to the micro-unit, as
``tracker banker spend`` prints it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import yaml

from tests import ROOT
from tests.integration.live import consume, send_all
from tests.redisproc import RedisNode

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

CAMPAIGNS = ["spring", "summer", "autumn", "winter"]
LINE_ITEMS = ["li-a", "li-b", "li-c"]


@pytest.fixture(scope="module")
def redis_cluster():
    """A three-master Redis Cluster on loopback, from scripts/redis/redis.sh."""
    node = RedisNode(cluster=True)
    node.down()
    node.up()
    yield node
    node.down()


def banker_servers(server_factory, redis: RedisNode, prefix: str, count: int = 2, **banker):
    """Start ``count`` tracker instances whose bankers share ``redis`` and ``prefix``."""
    servers = []
    for _ in range(count):
        server = server_factory(TRACKER_REDIS_URL=redis.url)
        data = yaml.safe_load(server.config.read_text())
        shipped = yaml.safe_load((ROOT / "config" / "tracker.yaml").read_text())
        block = data["collectors"]["banker"] = shipped["collectors"]["banker"]
        data["paths"]["billing"]["collectors"].append("banker")
        block.update(key_prefix=prefix, cluster=redis.cluster, **banker)
        block["budget_events"]["topic"] = f"tracker-budget-{prefix}"
        server.config.write_text(yaml.safe_dump(data, sort_keys=False))
        servers.append(server)
    servers[0].setup_topics()
    return [server.start() for server in servers]


def notices(count: int, seed: int) -> tuple[list[str], dict, dict]:
    """``count`` distinct billing notices, and their expected spend per campaign and line item."""
    rng = random.Random(seed)
    targets, campaigns, line_items = [], {}, {}
    for i in range(count):
        campaign, line_item = rng.choice(CAMPAIGNS), rng.choice(LINE_ITEMS)
        cpm = Decimal(rng.randint(1, 2_000_000)) / 1000  # CPM with up to three decimals
        micros = int(cpm * 1000)  # per impression: CPM / 1000, in micro-units
        targets.append(
            f"/bill?aid=auc-{seed}-{i}&iid=imp-1&bid=b-{i}&cid={campaign}&li={line_item}"
            f"&price={cpm}&cur=USD"
        )
        spent = campaigns.setdefault(campaign, [0, 0])
        spent[0] += micros
        spent[1] += 1
        spent = line_items.setdefault((campaign, line_item), [0, 0])
        spent[0] += micros
        spent[1] += 1
    return targets, campaigns, line_items


def spend(server, *args: str) -> dict:
    """``tracker banker spend`` as an operator runs it, parsed."""
    out = subprocess.run(
        [sys.executable, "-m", "tracker", "banker", "spend", *args],
        env=server.env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def wait_for(servers, events: int, timeout: float = 60.0) -> dict:
    """Poll the ledger until it holds ``events`` notices, then let it settle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ledger = spend(servers[0])
        if sum(c["events"] for c in ledger.values()) >= events:
            time.sleep(1.0)  # a late double count would show now
            return spend(servers[0])
        time.sleep(0.5)
    raise AssertionError(f"ledger incomplete: {ledger}")


def assert_exact(ledger: dict, campaigns: dict, line_items: dict) -> None:
    """Each campaign and line item holds exactly its distinct billable notices."""
    assert {c: [r["spend_micros"], r["events"]] for c, r in ledger.items()} == campaigns
    found = {
        (c, li): [r["spend_micros"], r["events"]]
        for c, report in ledger.items()
        for li, r in report["line_items"].items()
    }
    assert found == line_items


def traffic(targets: list[str], seed: int) -> list[list[tuple]]:
    """Every notice once, plus exact duplicates, retries on the other instance and AUDITs.

    Returns one request list per instance.
    """
    rng = random.Random(seed)
    a, b = [], []
    for i, target in enumerate(targets):
        (a if i % 2 else b).append(("GET", target, None, None))
        if rng.random() < 0.15:  # an exact duplicate on the same instance
            (a if i % 2 else b).append(("GET", target, None, None))
        if rng.random() < 0.15:  # the exchange retries on the other replica
            (b if i % 2 else a).append(("POST", target, b"", None))
        if rng.random() < 0.05:  # an AUDIT render of the same auction: never spent
            audit = target.split("&price=")[0] + f"-audit&price=AUDIT&cur=USD&x={i}"
            (a if i % 2 else b).append(("GET", audit, None, None))
    rng.shuffle(a)
    rng.shuffle(b)
    return [a, b]


def send_parallel(servers, batches: list[list[tuple]]) -> None:
    with ThreadPoolExecutor(len(servers)) as pool:
        results = pool.map(
            lambda pair: send_all(pair[0].port, pair[1], 2), zip(servers, batches, strict=True)
        )
        for result in results:
            statuses = {status for status, _, _ in result}
            assert statuses == {204}, statuses


def test_two_instances_one_redis_restarted_mid_run_count_each_notice_once(
    server_factory, live_redis
):
    prefix = "it" + uuid.uuid4().hex[:6]
    servers = banker_servers(server_factory, live_redis, prefix, max_pending=50)
    targets, campaigns, line_items = notices(3000, seed=11)
    first, second = [], []
    for batch in traffic(targets, seed=12):
        first.append(batch[: len(batch) // 2])
        second.append(batch[len(batch) // 2 :])
    started = time.time()
    send_parallel(servers, first)
    live_redis.down()
    # While Redis is down notices are taken (204), kept pending, past 50 per worker spooled.
    send_parallel(servers, [batch[:400] for batch in second])
    time.sleep(0.5)
    status, _, body = servers[0].get("/readyz")
    assert status == 200
    assert "redis down" in json.loads(body)["collectors"]["banker"]
    live_redis.up()
    send_parallel(servers, [batch[400:] for batch in second])
    ledger = wait_for(servers, len(targets))
    assert_exact(ledger, campaigns, line_items)
    assert servers[0].metric("tracker_banker_duplicates_total") > 0
    spooled = sum(s.metric("tracker_spooled_total", collector="banker") for s in servers)
    replayed = sum(s.metric("tracker_replayed_total", collector="banker") for s in servers)
    assert spooled > 0 and replayed > 0
    # The notices were booked under the UTC day they arrived: both days if the run crossed midnight.
    days = {time.strftime("%Y-%m-%d", time.gmtime(at)) for at in (started, time.time())}
    booked = [spend(servers[1], "--campaign", "summer", "--day", day) for day in sorted(days)]
    assert sum(one["summer"]["spend_micros"] for one in booked) == campaigns["summer"][0]


def test_redis_cluster_restarted_mid_run_counts_each_notice_once(server_factory, redis_cluster):
    prefix = "ic" + uuid.uuid4().hex[:6]
    servers = banker_servers(server_factory, redis_cluster, prefix)
    targets, campaigns, line_items = notices(1500, seed=21)
    batches = traffic(targets, seed=22)
    send_parallel(servers, [batch[: len(batch) // 2] for batch in batches])
    redis_cluster.restart()
    send_parallel(servers, [batch[len(batch) // 2 :] for batch in batches])
    ledger = wait_for(servers, len(targets))
    assert_exact(ledger, campaigns, line_items)
    # The campaigns' keys live on more than one master: the hash tags spread them.
    client = redis_cluster.client()
    slots = {client.keyslot(f"{prefix}:{{{c}}}:total") for c in CAMPAIGNS}
    nodes = {client.get_node_from_key(f"{prefix}:{{{c}}}:total").name for c in CAMPAIGNS}
    assert len(slots) == len(CAMPAIGNS) and len(nodes) > 1


def test_budget_cap_marks_exhausted_within_one_flush_and_reports_overspend(
    server_factory, redis_node
):
    prefix = "ib" + uuid.uuid4().hex[:6]
    interval = 0.5
    (server,) = banker_servers(server_factory, redis_node, prefix, 1, flush_interval=interval)
    cap = 10_000  # micro-units: ten notices at CPM 1.000
    args = ["--campaign", "tiny", "--total-micros", str(cap)]
    subprocess.run(
        [sys.executable, "-m", "tracker", "banker", "set-budget", *args],
        env=server.env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    client = redis_node.client()
    exhausted = f"{prefix}:exhausted"
    for i in range(9):
        server.get(f"/bill?aid=t-{i}&cid=tiny&price=1.000")
    time.sleep(interval * 2)
    assert not client.sismember(exhausted, "tiny")
    server.get("/bill?aid=t-9&cid=tiny&price=2.500")  # crosses the cap: 9000 + 2500
    sent = time.monotonic()
    while not client.sismember(exhausted, "tiny"):
        time.sleep(0.01)
        assert time.monotonic() - sent < 10
    elapsed = time.monotonic() - sent
    # One flush interval, plus the scheduling slack of two busy cores.
    assert elapsed <= interval + 0.25, f"exhausted after {elapsed:.3f} s"
    server.get("/bill?aid=t-10&cid=tiny&price=4.000")  # spent past the cap, still counted
    time.sleep(interval * 3)
    report = spend(server, "--campaign", "tiny")["tiny"]
    assert report["spend_micros"] == 9000 + 2500 + 4000
    assert report["overspend_micros"] == 9000 + 2500 + 4000 - cap
    assert report["exhausted"] is True
    messages = consume([f"tracker-budget-{prefix}"], expected=1, timeout=20, settle=1.0)
    assert [m[2]["type"] for m in messages] == ["budget_exhausted"]
    _, key, notice = messages[0]
    assert key == b"tiny"
    assert (notice["cap"], notice["cap_micros"], notice["spend_micros"]) == ("total", cap, 11_500)
    assert notice["overspend_micros"] == 1500
    assert server.metric("tracker_banker_overspend_micros_total", cap="total") == 5500
