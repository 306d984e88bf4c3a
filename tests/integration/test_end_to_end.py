"""gunicorn + meinheld (and gthread) against the real broker: one event per accepted request."""

from __future__ import annotations

import json
import random
import urllib.parse
from collections import Counter

import pytest

from tests.integration.live import consume, send_all
from tracker.http.responses import PIXEL
from tracker.intake.fields.schema import NOT_A_DECIMAL

pytestmark = pytest.mark.integration

CAMPAIGNS = ["c-1", "c-2", "c-3", "camp_4"]
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}


def build_requests(n: int, seed: int = 7) -> tuple[list[tuple], list[dict]]:
    """Mix valid and invalid requests over the default paths, GET and POST.

    Each request carries a unique id (impression id or order id), so its event,
    if any, can be found in the topic. Returns the requests and, for each, what
    the test expects.
    """
    rng = random.Random(seed)
    requests, expected = [], []
    for i in range(n):
        cid = rng.choice(CAMPAIGNS)
        roll = rng.random()
        if roll < 0.40:
            # A CPM with cents: 3.07 is 3_070_000 CPM micros, 3070 micros per impression.
            cents = rng.randint(0, 99_999)
            price = f"{cents // 100}.{cents % 100:02d}"
            query = {"cid": cid, "crid": f"cr{i % 5}", "iid": f"imp-{i}", "price": price, "cb": i}
            requests.append(("GET", "/imp?" + urllib.parse.urlencode(query), None, BROWSER))
            expected.append(
                {
                    "kind": "impression",
                    "id": f"imp-{i}",
                    "status": 200,
                    "dimensions": {
                        "campaign_id": cid,
                        "creative_id": f"cr{i % 5}",
                        "impression_id": f"imp-{i}",
                        "is_bot": False,
                        "device_type": "desktop",
                        "os": "Linux",
                        "browser": "Firefox",
                        "browser_version": "133",
                    },
                    "metrics": {"impressions": 1, "cost_micros": cents * 10},
                }
            )
        elif roll < 0.50:
            query = {"iid": f"imp-{i}", "price": "free"}
            requests.append(("GET", "/imp?" + urllib.parse.urlencode(query), None, BROWSER))
            expected.append(
                {"kind": "impression", "id": f"imp-{i}", "status": 200, "rejected": True}
            )
        elif roll < 0.70:
            query = {"cid": cid, "order": f"o-{i}", "value": "12.5", "currency": "EUR"}
            requests.append(("GET", "/conv?" + urllib.parse.urlencode(query), None, {}))
            expected.append(
                {
                    "kind": "conversion",
                    "id": f"o-{i}",
                    "status": 200,
                    "dimensions": {"campaign_id": cid, "order_id": f"o-{i}", "currency": "EUR"},
                    "metrics": {"conversions": 1, "value_micros": 12_500_000, "quantity": 1},
                }
            )
        elif roll < 0.88:
            body = json.dumps({"cid": cid, "order": f"o-{i}", "value": 3, "quantity": 2}).encode()
            requests.append(("POST", "/conv", body, {"Content-Type": "application/json"}))
            expected.append(
                {
                    "kind": "conversion",
                    "id": f"o-{i}",
                    "status": 200,
                    "dimensions": {"campaign_id": cid, "order_id": f"o-{i}", "currency": "USD"},
                    "metrics": {"conversions": 1, "value_micros": 3_000_000, "quantity": 2},
                }
            )
        elif roll < 0.94:
            body = urllib.parse.urlencode({"cid": cid, "order": f"o-{i}"}).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            requests.append(("POST", "/conv", body, headers))
            expected.append(
                {
                    "kind": "conversion",
                    "id": f"o-{i}",
                    "status": 200,
                    "dimensions": {"campaign_id": cid, "order_id": f"o-{i}", "currency": "USD"},
                    "metrics": {"conversions": 1, "quantity": 1},
                }
            )
        else:
            body = json.dumps({"cid": cid, "order": f"o-{i}", "value": "abc"}).encode()
            requests.append(("POST", "/conv", body, {"Content-Type": "application/json"}))
            expected.append({"kind": "conversion", "id": f"o-{i}", "status": 400, "rejected": True})
    return requests, expected


def event_key(event: dict) -> str:
    return event["dimensions"].get("impression_id") or event["dimensions"]["order_id"]


@pytest.mark.slow
@pytest.mark.parametrize(("worker_class", "count"), [("meinheld", 3000), ("gthread", 600)])
def test_one_event_per_accepted_request(server_factory, worker_class, count):
    server = server_factory(TRACKER_WORKER_CLASS=worker_class)
    server.setup_topics()
    server.start()
    requests, expected = build_requests(count)

    responses = send_all(server.port, requests)

    assert [status for status, _, _ in responses] == [e["status"] for e in expected]
    for (status, headers, body), exp in zip(responses, expected, strict=True):
        if exp["kind"] == "impression":
            assert body == PIXEL
            assert ("x-tracker-error" in headers) == bool(exp.get("rejected"))
        elif status == 400:
            assert json.loads(body)["errors"] == {"value": [NOT_A_DECIMAL]}

    accepted = {e["id"]: e for e in expected if not e.get("rejected")}
    topics = {
        "impression": server.topic("tracker-impressions"),
        "conversion": server.topic("tracker-conversions"),
    }
    messages = consume([*topics.values(), server.topic("tracker-events")], len(accepted))
    seen = Counter(event_key(event) for _, _, event in messages)
    assert len(messages) == len(accepted)
    assert set(seen) == set(accepted)
    assert max(seen.values()) == 1
    for topic, key, event in messages:
        exp = accepted[event_key(event)]
        assert topic == topics[exp["kind"]]
        assert event["type"] == exp["kind"]
        assert event["dimensions"] == exp["dimensions"]
        assert event["metrics"] == exp["metrics"]
        assert event["context"]["ip"] == "127.0.0.0"
        expected_key = (
            event["dimensions"]["campaign_id"] if exp["kind"] == "impression" else event["id"]
        )
        assert key == expected_key.encode()

    # The log collector saw the same events, one file per worker.
    logged = [
        json.loads(line)
        for path in sorted(server.log_dir.glob("events-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert sorted(e["id"] for e in logged) == sorted(e["id"] for _, _, e in messages)

    # Metrics aggregate every worker.
    _, _, metrics_text = server.admin_get("/metrics")
    rejected = len(expected) - len(accepted)
    lines = metrics_text.decode().splitlines()
    accepted_total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("tracker_requests_total{") and 'outcome="accepted"' in line
    )
    rejected_total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("tracker_requests_total{") and 'outcome="rejected"' in line
    )
    assert (accepted_total, rejected_total) == (len(accepted), rejected)
    assert server.stop() == 0
