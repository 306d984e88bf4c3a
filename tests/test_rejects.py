"""The rejected-requests stream and per-client limits, as a caller and an auditor see them."""

from __future__ import annotations

import json
import re

import falcon.testing
import pytest

from tests import ROOT
from tests.apps import build_app
from tests.metrics import counted
from tracker.config import ConfigError, load_text
from tracker.plugins import Refused

SHIPPED = (ROOT / "config" / "tracker.yaml").read_text()
STREAM = """rejected:
  collectors: [rejected]
  sample_rate: 1.0
  max_per_second: 100
  max_value_length: 64
"""


def client_for(*replacements: tuple[str, str]):
    text = SHIPPED
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    tracker, memory = build_app(load_text(text, {}))
    return falcon.testing.TestClient(tracker.wsgi), memory


def rejected_events(memory) -> list:
    assert all(e.type == "rejected" for e in memory["rejected"].events)
    return memory["rejected"].events


def test_a_refusal_reaches_the_stream_without_ip_or_cookies_and_values_cut():
    client, memory = client_for()
    long_value = "x" * 500
    client.simulate_get(
        "/imp",
        query_string=f"crid=cr1&price=-1&note={long_value}",
        headers={
            "Cookie": "tuid=secret-cookie",
            "User-Agent": "UA/" + "u" * 100,
            "Referer": "https://pub.example/page?email=a@b.example",
        },
        remote_addr="198.51.100.7",
    )
    (event,) = rejected_events(memory)
    assert memory["kafka"].events == memory["log"].events == []  # only the stream's collector
    record = event.to_dict()
    assert record["path"] == "impression"
    assert record["context"] == {}
    assert record["dimensions"] == {
        "status": 400,
        "reason": "invalid_fields",
        "description": "One or more fields are missing or invalid.",
        "errors": {"campaign_id": ["Missing data for required field."]},
        "request": {
            "method": "GET",
            "path": "/imp",
            "fields": {"creative_id": "cr1", "price": "-1"},
            "withheld": [],
            "undeclared": ["note"],
            "user_agent": "UA/" + "u" * 61,
            "referer": "https://pub.example/page",
            "content_type": None,
            "content_length": None,
        },
    }
    assert "198.51.100" not in event.to_json().decode()
    assert "secret-cookie" not in event.to_json().decode()


def test_the_doc_s_example_is_what_the_stream_receives():
    doc = (ROOT / "docs" / "rejected.md").read_text()
    (example,) = re.findall(r"```json\n(.*?)```", doc, re.S)
    (query,) = re.findall(r"`GET /imp\?(.*?)`", doc)
    client, memory = client_for()
    client.simulate_get(
        "/imp",
        query_string=query,
        headers={
            "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "Referer": "https://pub.example/page?article=42",
        },
    )
    (event,) = rejected_events(memory)
    assert event.dimensions == json.loads(example)


def test_refusals_before_routing_and_batch_items_reach_the_stream():
    client, memory = client_for()
    client.simulate_get("/conv", query_string="cid=%zz")
    client.simulate_post("/events", json=[{"event": "win", "aid": "a1"}, {"event": "win"}])
    before, first, second = rejected_events(memory)
    assert (before.path, before.dimensions["reason"]) == ("_request", "invalid_encoding")
    assert first.path == second.path == "win"
    assert first.dimensions["request"]["item"] == {
        "index": 0,
        "fields": {"auction_id": "a1"},
        "withheld": [],
        "undeclared": [],
    }
    assert second.dimensions["request"]["item"]["index"] == 1


def test_the_stream_is_capped_per_second_and_sampled():
    capped = counted("tracker_rejected_stream_capped_total", path="conversion")
    client, memory = client_for(("max_per_second: 100", "max_per_second: 3"))
    for _ in range(10):
        client.simulate_get("/conv")
    # Ten refusals in (almost certainly) one second: three kept, seven counted as capped.
    assert len(rejected_events(memory)) in (3, 6)
    now_capped = counted("tracker_rejected_stream_capped_total", path="conversion")
    assert now_capped - capped == 10 - len(rejected_events(memory))
    client, memory = client_for(("sample_rate: 1.0", "sample_rate: 0.0"))
    client.simulate_get("/conv")
    assert rejected_events(memory) == []


def test_without_a_rejected_block_there_is_no_stream():
    client, memory = client_for((STREAM, ""))
    client.simulate_get("/conv")
    assert rejected_events(memory) == []


@pytest.mark.parametrize(
    ("block", "error"),
    [
        (
            "rejected:\n  collectors: [nope]\n",
            "rejected.collectors.0: no collector named 'nope'",
        ),
        (
            "rejected:\n  collectors: [kafka]\n  sample_rat: 1\n",
            "rejected.sample_rat: Unknown field. (found: 1)",
        ),
        (
            "rejected:\n  collectors: [kafka]\n  sample_rate: 2\n",
            "rejected.sample_rate: Must be greater than or equal to 0 and less than or equal "
            "to 1. (found: 2)",
        ),
    ],
)
def test_a_bad_rejected_block_is_reported(block, error):
    with pytest.raises(ConfigError) as info:
        load_text(SHIPPED.replace(STREAM, block), {})
    assert info.value.errors == [error]


LIMIT_WIN = (
    "    event_type: win\n",
    "    event_type: win\n    rate_limit: {per_second: 0.5, burst: 2, key: 'query:seat'}\n",
)
LIMIT_IMP = (
    "    event_type: impression\n",
    "    event_type: impression\n    rate_limit: {per_second: 1, max_clients: 2}\n",
)


def test_a_client_over_its_rate_gets_429_with_retry_after():
    client, memory = client_for(LIMIT_WIN)
    answers = [
        client.simulate_get("/win", params={"aid": f"a{i}", "price": "1", "seat": "s1"})
        for i in range(3)
    ]
    other_seat = client.simulate_get("/win", params={"aid": "b", "price": "1", "seat": "s2"})
    assert [a.status_code for a in answers] == [204, 204, 429]
    assert answers[2].headers["retry-after"] == "2"
    assert answers[2].json["reason"] == "rate_limited"
    assert other_seat.status_code == 204
    wins = [e for e in memory["kafka"].events if e.type == "win"]
    assert len(wins) == 3
    assert rejected_events(memory)[0].dimensions["reason"] == "rate_limited"


def test_a_pixel_path_answers_429_not_a_pixel_and_keeps_few_buckets():
    client, _ = client_for(LIMIT_IMP)

    def imp(ip: str) -> int:
        return client.simulate_get("/imp", params={"cid": "c"}, remote_addr=ip).status_code

    assert [imp("192.0.2.1"), imp("192.0.2.1")] == [200, 429]
    # Two buckets at most: two more clients push 192.0.2.1's out, so it starts afresh.
    assert [imp("192.0.2.2"), imp("192.0.2.3"), imp("192.0.2.1")] == [200, 200, 200]


def test_a_malformed_content_length_is_copied_as_sent():
    config = load_text(SHIPPED, {})
    tracker, memory = build_app(config)
    environ = falcon.testing.create_environ("/imp", headers={"Content-Length": "ten"})
    statuses = []
    b"".join(tracker.wsgi(environ, lambda status, headers, *exc: statuses.append(status)))
    assert statuses == ["200 OK"]
    (event,) = rejected_events(memory)
    assert event.dimensions["request"]["content_length"] == "ten"


def rejections(client, path: str, reason: str) -> float:
    """``tracker_rejected_total{path,reason}`` as ``/metrics`` says it (0 when absent)."""
    wanted = f'tracker_rejected_total{{path="{path}",reason="{reason}"}} '
    for line in client.simulate_get("/metrics").text.splitlines():
        if line.startswith(wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_unknown_path_and_a_wrong_method_reach_the_stream_and_the_metrics():
    client, memory = client_for()
    unknown = ("_request", "unknown_path")
    wrong = ("conversion", "method_not_allowed")
    before = [rejections(client, *labels) for labels in (unknown, wrong)]
    lost = client.simulate_get("/wp-login.php", query_string="q=" + "w" * 3000)
    delete = client.simulate_delete("/conv")
    assert (lost.status_code, delete.status_code) == (404, 405)
    assert delete.headers["Allow"] == "GET, POST, OPTIONS"
    after = [rejections(client, *labels) for labels in (unknown, wrong)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1]
    first, second = rejected_events(memory)
    assert (first.path, first.dimensions["status"], first.dimensions["reason"]) == (
        "_request",
        404,
        "unknown_path",
    )
    assert first.dimensions["request"]["path"] == "/wp-login.php"
    # No path declares anything at an unknown URL: parameters by name only.
    assert first.dimensions["request"]["fields"] == {}
    assert first.dimensions["request"]["undeclared"] == ["q"]
    assert (second.path, second.dimensions["status"], second.dimensions["reason"]) == (
        "conversion",
        405,
        "method_not_allowed",
    )


def test_unknown_paths_are_capped_in_the_stream_like_other_refusals():
    client, memory = client_for(("max_per_second: 100", "max_per_second: 2"))
    for i in range(20):
        assert client.simulate_get(f"/scan/{i}").status_code == 404
    assert len(rejected_events(memory)) in (2, 4)


def test_a_refusal_a_collector_decides_later_reaches_the_stream_as_taken():
    _, memory = build_app(load_text(SHIPPED, {}))
    late = Refused(409, "price_token_reused", "Already used by another auction; not billed.")
    fields = {"event_id": "e-1", "auction_id": "a-2", "price_token": "9f" * 12}
    before = counted("tracker_rejected_late_total", path="_banker", reason="price_token_reused")
    memory["kafka"].late_refusal("_banker", late, fields)
    (event,) = rejected_events(memory)
    assert event.path == "_banker"
    assert event.dimensions["status"] == 202  # the request was answered and taken
    assert event.dimensions["reason"] == "price_token_reused"
    assert event.dimensions["request"] == fields
    after = counted("tracker_rejected_late_total", path="_banker", reason="price_token_reused")
    assert after == before + 1
