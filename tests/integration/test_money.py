"""Each money and identity defect of issue 18, over real HTTP, with real Redis and Kafka.

Every test here failed on the release before: a notice spent twice, a token
replayed, an odd currency silently left out of the ledger, ids that collided
or did not match.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.live import consume
from tests.integration.money import CRYPTO, PRICE_KEYS, bank_server, banker, post_form, settled
from tests.redisproc import RedisNode

pytestmark = [pytest.mark.integration, pytest.mark.redis]

#: Workers re-read the configured currencies once a second (collectors/banker/currencies.py).
CURRENCY_REFRESH = 1.5


@pytest.fixture(scope="module")
def plain(tmp_path_factory, broker, redis_node):
    """The config `make run` starts: no price keys, clear prices bill."""
    server = bank_server(tmp_path_factory.mktemp("plain"), broker, redis_node)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_cluster():
    """A three-master Redis Cluster on loopback, from scripts/redis/redis.sh."""
    node = RedisNode(cluster=True)
    node.down()
    node.up()
    yield node
    node.down()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, broker, redis_node):
    """The exchange's price keys set: only encrypted prices bill.

    One worker: a worker refuses a token it saw with another auction at the
    request; one first seen by another worker is flagged in the ledger
    (tests/test_banker_identity.py).
    """
    server = bank_server(
        tmp_path_factory.mktemp("keyed"), broker, redis_node, TRACKER_WORKERS="1", **PRICE_KEYS
    )
    yield server
    server.stop()


def ledger(server, campaign: str) -> dict:
    done = banker(server, "spend", "--campaign", campaign)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[campaign]


def spent(server, campaign: str, expected: tuple[int, int]) -> dict:
    def read():
        report = ledger(server, campaign)
        return report["spend_micros"], report["events"]

    assert settled(read, expected) == expected
    return ledger(server, campaign)


def test_the_readme_example_sent_twice_is_spent_once(plain):
    target = "/bill?aid=auc-1&cid=summer-sale&li=li-1&price=3.10"
    assert [plain.get(target)[0] for _ in range(2)] == [204, 204]
    assert post_form(plain, "/bill", "aid=auc-1&cid=summer-sale&li=li-1&price=3.10")[0] == 204
    report = spent(plain, "summer-sale", (3100, 1))
    assert report["line_items"]["li-1"]["spend_micros"] == 3100
    assert report["currency"] == "USD"


def test_a_price_token_replayed_under_another_auction_is_refused_and_not_spent(keyed):
    token = CRYPTO.encrypt(4_000_000, b"replay-iv-000001")
    first = f"/bill?aid=tok-a1&cid=tokens&price={token}"
    assert keyed.get(first)[0] == 204
    assert keyed.get(first)[0] == 204  # the exchange's retry
    padded = token + "=" * (-len(token) % 4)
    assert keyed.get(f"/bill?aid=tok-a1&iid=i2&cid=tokens&price={padded}")[0] == 204
    status, _, body = keyed.get(f"/bill?aid=tok-a2&cid=tokens&price={token}")
    assert status == 409
    assert json.loads(body)["reason"] == "price_token_reused"
    spent(keyed, "tokens", (8000, 2))  # the auction's two notices, never the replay
    assert keyed.metric("tracker_rejected_total", reason="price_token_reused") == 1


def test_a_token_replayed_to_another_replica_is_not_spent_and_reaches_the_rejected_stream(
    tmp_path, broker, redis_node, keyed
):
    replica = bank_server(
        tmp_path, broker, redis_node, prefix=keyed.prefix, TRACKER_WORKERS="1", **PRICE_KEYS
    )
    try:
        token = CRYPTO.encrypt(3_000_000, b"replica-iv-00001")
        assert keyed.get(f"/bill?aid=rep-a1&cid=replicas&price={token}")[0] == 204
        spent(keyed, "replicas", (3000, 1))
        # The replica never saw the token: it takes the notice, the ledger's claim decides.
        assert replica.get(f"/bill?aid=rep-a2&cid=replicas&price={token}")[0] == 204
        report = spent(keyed, "replicas", (3000, 1))
        assert report["flagged"]["token_reused_events"] == 1
        records = [
            event for _, _, event in consume([replica.topic("tracker-rejected")], 1, settle=1.0)
        ]
        (record,) = records
        assert record["path"] == "_banker"
        assert record["dimensions"]["status"] == 202
        assert record["dimensions"]["reason"] == "price_token_reused"
        assert record["dimensions"]["request"]["auction_id"] == "rep-a2"
        assert token not in json.dumps(record)  # the digest, never the token
    finally:
        replica.stop()


def test_the_same_notice_for_two_campaigns_is_spent_once_and_flagged(plain):
    assert plain.get("/bill?aid=two-1&iid=i&bid=b&cid=first&price=2")[0] == 204
    spent(plain, "first", (2000, 1))
    assert plain.get("/bill?aid=two-1&iid=i&bid=b&cid=second&price=2")[0] == 204

    def second():
        report = ledger(plain, "second")
        return report["events"] + report.get("flagged", {}).get("other_campaign_events", 0)

    assert settled(second, 1) == 1
    assert (ledger(plain, "second")["spend_micros"], ledger(plain, "first")["events"]) == (0, 1)
    assert ledger(plain, "second")["flagged"]["other_campaign_events"] == 1


def test_an_odd_currency_first_is_refused_and_the_campaign_keeps_its_own(plain):
    status, _, body = plain.get("/bill?aid=cur-1&cid=odd-first&price=1&cur=EUR")
    assert status == 400
    assert json.loads(body)["reason"] == "currency_mismatch"
    assert plain.get("/bill?aid=cur-2&cid=odd-first&price=1")[0] == 204
    assert plain.get("/bill?aid=cur-3&cid=odd-first&price=1&cur=USD")[0] == 204
    assert spent(plain, "odd-first", (2000, 2))["currency"] == "USD"
    done = banker(plain, "set-budget", "--campaign", "in-euro", "--currency", "EUR")
    assert done.returncode == 0, done.stderr
    time.sleep(CURRENCY_REFRESH)  # every worker re-reads the configured currencies
    assert plain.get("/bill?aid=cur-4&cid=in-euro&price=1&cur=EUR")[0] == 204
    assert plain.get("/bill?aid=cur-5&cid=in-euro&price=1")[0] == 400  # USD by default
    assert spent(plain, "in-euro", (1000, 1))["currency"] == "EUR"


def test_an_absurd_auction_time_is_never_a_5xx(plain):
    status, _, _ = plain.get(f"/bill?aid=ts-1&cid=absurd-ts&price=1&ts={'9' * 400}")
    assert status < 500
    if status == 204:  # taken: then it is spent
        spent(plain, "absurd-ts", (1000, 1))


def test_ids_with_the_separator_no_longer_collide(plain):
    one = "/bill?aid=a%1Fb&iid=c&bid=d&cid=separator&price=1"
    two = "/bill?aid=a&iid=b%1Fc&bid=d&cid=separator&price=1"
    assert [plain.get(one)[0], plain.get(two)[0]] == [204, 204]
    spent(plain, "separator", (2000, 2))


def test_a_conversion_postback_sent_twice_is_one_event(plain):
    target = "/conv?cid=shop&clid=clk-77&order=o-77&value=12.5"
    first, again = (json.loads(plain.get(target)[2])["id"] for _ in range(2))
    posted = json.loads(post_form(plain, "/conv", "cid=shop&clid=clk-77&order=o-77")[2])["id"]
    other = json.loads(plain.get("/conv?cid=shop&clid=clk-77&order=o-78")[2])["id"]
    assert first == again == posted
    assert other != first


def test_vast_pauses_at_two_playheads_and_errors_with_two_codes_are_four_events(plain):
    base = "cid=vast&aid=v-1&iid=i-1&bid=b-1"
    targets = [
        f"/vast/pause?{base}&ph=00:00:05.000",
        f"/vast/pause?{base}&ph=00:00:12.000",
        f"/vast/pause?{base}&ph=00:00:12.000",  # a retry of the second
        f"/vast/error?{base}&err=303",
        f"/vast/error?{base}&err=402",
    ]
    assert {plain.get(t)[0] for t in targets} == {200}
    events = [
        event
        for _, _, event in consume([plain.topic("tracker-video")], expected=5, settle=1.0)
        if event["dimensions"].get("auction_id") == "v-1"
    ]
    assert len(events) == 5
    assert len({e["id"] for e in events}) == 4


def test_on_redis_cluster_an_id_and_a_token_are_spent_once(tmp_path, broker, redis_cluster):
    server = bank_server(tmp_path, broker, redis_cluster, TRACKER_WORKERS="1", **PRICE_KEYS)
    try:
        token = CRYPTO.encrypt(2_000_000, b"cluster-iv-00001")
        notice = f"aid=cl-1&iid=i&bid=b&price={token}"
        assert server.get(f"/bill?{notice}&cid=north")[0] == 204
        spent(server, "north", (2000, 1))
        assert server.get(f"/bill?{notice}&cid=south")[0] == 204  # same notice, other campaign
        assert server.get(f"/bill?aid=cl-2&cid=south&price={token}")[0] == 409  # replayed
        assert server.get(f"/bill?aid=cl-3&cid=south&price={token}&cur=EUR")[0] == 400

        def south():
            return ledger(server, "south")["flagged"]["other_campaign_events"]

        assert settled(south, 1) == 1
        assert ledger(server, "south")["spend_micros"] == 0
        # Claims are keyed by the id and the token: they spread over the masters.
        client = redis_cluster.client()
        keys = [f"{server.prefix}:owner:{{x{i}}}" for i in range(20)]
        assert len({client.get_node_from_key(k).name for k in keys}) > 1
    finally:
        server.stop()
