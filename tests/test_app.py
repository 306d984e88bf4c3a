"""The HTTP behaviour of configured paths, driven in-process."""

from __future__ import annotations

import json

import falcon.testing
import pytest

from collectors.memory import MemoryCollector, MemoryConfig
from tests import ROOT
from tests.apps import build_app
from tests.metrics import counted
from tracker.config import load_file, load_text
from tracker.http.app import Tracker
from tracker.http.responses import PIXEL
from tracker.intake.fields.schema import NOT_A_DECIMAL
from tracker.intake.pipeline import Pipeline
from tracker.plugins import Preprocessor


def rejected_count(path: str, reason: str) -> float:
    return counted("tracker_rejected_total", path=path, reason=reason)


def test_pixel_path_accepts_and_answers_gif(default_app):
    client, memory = default_app
    resp = client.simulate_get(
        "/imp",
        params={"cid": "c-1", "crid": "cr9", "iid": "imp-1", "price": "2.5", "cb": "123"},
        headers={"User-Agent": "UA/1.0", "Referer": "https://pub.example/page"},
        remote_addr="203.0.113.77",
    )
    assert resp.status_code == 200
    assert resp.content == PIXEL
    assert resp.headers["content-type"] == "image/gif"
    assert resp.headers["cache-control"] == "no-cache, no-store, must-revalidate, private"
    (event,) = memory["kafka"].events
    assert memory["log"].events == [event]
    assert event.type == "impression"
    assert event.dimensions == {
        "campaign_id": "c-1",
        "creative_id": "cr9",
        "impression_id": "imp-1",
        "is_bot": False,
        # A user agent the parser does not know (counted as unrecognised).
        "device_type": "other",
    }
    # A CPM of 2.5 is 2500 micro-units for one impression.
    assert event.metrics == {"impressions": 1, "cost_micros": 2500}
    assert event.context == {
        "ip": "203.0.113.0",
        "user_agent": "UA/1.0",
        "referer": "https://pub.example/page",
    }


def test_pixel_path_rejects_with_a_pixel_and_a_reason_header(default_app):
    client, memory = default_app
    before = rejected_count("impression", "invalid_fields")
    resp = client.simulate_get("/imp", params={"crid": "x", "price": "-1"})
    assert resp.status_code == 200
    assert resp.content == PIXEL
    # The shipped config names the first field that failed (server.field_errors: first).
    assert resp.headers["x-tracker-error"] == (
        "invalid_fields: campaign_id: Missing data for required field."
    )
    assert memory["kafka"].events == []
    assert rejected_count("impression", "invalid_fields") == before + 1


def test_json_path_accepts_get_and_post(default_app):
    client, memory = default_app
    got = client.simulate_get("/conv", params={"cid": "c1", "value": "19.99", "order": "o-1"})
    posted = client.simulate_post(
        "/conv", json={"cid": "c2", "value": 5, "currency": "EUR", "quantity": 3}
    )
    form = client.simulate_post(
        "/conv",
        body="cid=c3&value=1.5&order=o-3",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert [r.status_code for r in (got, posted, form)] == [200, 200, 200]
    events = memory["kafka"].events
    assert [r.json["id"] for r in (got, posted, form)] == [e.id for e in events]
    assert [e.dimensions for e in events] == [
        {"campaign_id": "c1", "order_id": "o-1", "currency": "USD"},
        {"campaign_id": "c2", "currency": "EUR"},
        {"campaign_id": "c3", "order_id": "o-3", "currency": "USD"},
    ]
    assert [e.metrics for e in events] == [
        {"conversions": 1, "value_micros": 19_990_000, "quantity": 1},
        {"conversions": 1, "value_micros": 5_000_000, "quantity": 3},
        {"conversions": 1, "value_micros": 1_500_000, "quantity": 1},
    ]


def all_field_errors_app():
    text = (ROOT / "config" / "tracker.yaml").read_text()
    assert "  field_errors: first " in text
    text = text.replace("  field_errors: first ", "  field_errors: all ", 1)
    tracker, memory = build_app(load_text(text, {}))
    return falcon.testing.TestClient(tracker.wsgi), memory


INVALID_CONVERSION = {"value": "1.2345678", "currency": "euro", "quantity": "many"}


def test_invalid_fields_are_a_400_naming_the_first_field_that_failed(default_app):
    client, memory = default_app
    resp = client.simulate_post("/conv", json=INVALID_CONVERSION)
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/json"
    assert resp.json == {
        "title": "Bad Request",
        "description": "One or more fields are missing or invalid.",
        "reason": "invalid_fields",
        "errors": {"campaign_id": ["Missing data for required field."]},
    }
    fixed = client.simulate_post("/conv", json={**INVALID_CONVERSION, "cid": "c1"})
    assert fixed.json["errors"] == {"value": ["More than 6 decimal places."]}
    assert memory["kafka"].events == []


def test_field_errors_all_names_each_field_that_failed():
    client, memory = all_field_errors_app()
    resp = client.simulate_post("/conv", json=INVALID_CONVERSION)
    assert resp.status_code == 400
    assert resp.json == {
        "title": "Bad Request",
        "description": "One or more fields are missing or invalid.",
        "reason": "invalid_fields",
        "errors": {
            "campaign_id": ["Missing data for required field."],
            "value": ["More than 6 decimal places."],
            "currency": ["Does not match ^[A-Z]{3}$."],
            "quantity": [
                "Not a valid integer: ASCII digits, an optional leading -, no exponent or "
                "separators."
            ],
        },
    }
    assert memory["kafka"].events == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 400, "invalid_json"),
        (b"cid=\xff\xfe", "application/x-www-form-urlencoded", 400, "invalid_encoding"),
        (b"<xml/>", "application/xml", 415, "unsupported_media_type"),
        (b"{" + b" " * 70_000 + b"}", "application/json", 413, "body_too_large"),
    ],
)
def test_bad_bodies(default_app, body, content_type, status, reason):
    client, memory = default_app
    before = rejected_count("conversion", reason)
    resp = client.simulate_post("/conv", body=body, headers={"Content-Type": content_type})
    assert resp.status_code == status
    assert resp.json["reason"] == reason
    assert memory["kafka"].events == []
    assert rejected_count("conversion", reason) == before + 1


def test_oversize_body_is_refused_from_content_length_without_reading(default_app):
    client, memory = default_app

    class Unreadable:
        def read(self, size=-1):
            raise AssertionError("the body was read")

        readline = readlines = read

        def __iter__(self):
            raise AssertionError("the body was read")

    resp = client.simulate_request(
        "POST",
        "/conv",
        headers={"Content-Type": "application/json", "Content-Length": "10000000"},
        extras={"wsgi.input": Unreadable()},
    )
    assert resp.status_code == 413
    assert memory["kafka"].events == []


def test_unknown_path_and_wrong_method(default_app):
    client, _ = default_app
    assert client.simulate_get("/nowhere").status_code == 404
    resp = client.simulate_post("/imp")
    assert resp.status_code == 405
    assert "GET" in resp.headers["allow"]
    assert client.simulate_delete("/conv").status_code == 405


def test_every_field_source(source_app):
    client, memory = source_app
    resp = client.simulate_post(
        "/t/b",
        params={"q": "from-query", "price": "12.5", "ratio": "0.25", "flag": "true"},
        json={"b": 4, "either": "from-body"},
        headers={"X-Thing": "from-header", "Cookie": "uid=from-cookie"},
    )
    assert resp.status_code == 200, resp.text
    (event,) = memory["mem"].events
    assert event.dimensions == {
        "kind": "b",
        "q": "from-query",
        "b": 4,
        "either": "from-body",
        "header": "from-header",
        "cookie": "from-cookie",
        "flag": True,
    }
    assert event.metrics == {"hits": 1, "price_micros": 12_500_000, "ratio": 0.25, "n": 7}


def test_query_wins_over_body_when_both_are_listed(source_app):
    client, memory = source_app
    client.simulate_post("/t/a", params={"either": "q"}, json={"either": "b"})
    assert memory["mem"].events[0].dimensions["either"] == "q"


def test_path_parameter_is_validated(source_app):
    client, memory = source_app
    resp = client.simulate_get("/t/zzz")
    assert resp.status_code == 400
    assert resp.json["errors"] == {"kind": ["Must be one of: a, b."]}
    assert memory["mem"].events == []


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"ratio": "nan"}, {"ratio": [NOT_A_DECIMAL]}),
        (
            {"ratio": "2"},
            {"ratio": ["Must be greater than or equal to 0 and less than or equal to 1."]},
        ),
        ({"price": "1e400"}, {"price": [NOT_A_DECIMAL]}),
        ({"price": "9" * 400}, {"price": ["Must be less than or equal to 100."]}),
        ({"price": "Infinity"}, {"price": [NOT_A_DECIMAL]}),
        ({"flag": "maybe"}, {"flag": ["Not a valid boolean."]}),
        ({"q": "x" * 1025}, {"q": ["Longer than maximum length 1024."]}),
    ],
)
def test_field_checks(source_app, params, errors):
    client, memory = source_app
    resp = client.simulate_get("/t/a", params=params)
    assert resp.status_code == 400
    assert resp.json["errors"] == errors
    assert memory["mem"].events == []


def test_no_content_response_and_route_to_several_collectors(source_app):
    client, memory = source_app
    resp = client.simulate_post("/e")
    assert resp.status_code == 204
    assert resp.content == b""
    assert len(memory["mem"].events) == 1
    assert memory["other"].events == memory["mem"].events


def test_path_body_limit_overrides_server_limit(source_app):
    client, _ = source_app
    resp = client.simulate_post(
        "/e", body=b"{" + b" " * 20 + b"}", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413
    assert resp.json["description"] == "The body is over the 16-byte limit."


def test_health_ready_and_metrics(default_app):
    client, memory = default_app
    assert client.simulate_get("/healthz").json == {"status": "ok"}
    assert client.simulate_get("/readyz").json == {
        "status": "ready",
        "unhealthy": [],
        "collectors": {
            "kafka": "ok",
            "rejected": "ok",
            "log": "ok",
            "banker": "ok",
            "partner": "ok",
        },
    }
    memory["log"].is_healthy = False
    ready = client.simulate_get("/readyz")
    assert ready.status_code == 503
    assert ready.json == {
        "status": "unavailable",
        "unhealthy": ["log"],
        "collectors": {
            "kafka": "ok",
            "rejected": "ok",
            "log": "unhealthy",
            "banker": "ok",
            "partner": "ok",
        },
    }
    client.simulate_get("/imp", params={"cid": "metric-check"})
    text = client.simulate_get("/metrics").text
    assert 'tracker_requests_total{outcome="accepted",path="impression"}' in text


def test_forwarded_for_is_ignored_without_trusted_proxies(default_app):
    client, memory = default_app
    client.simulate_get(
        "/imp",
        params={"cid": "c"},
        headers={"X-Forwarded-For": "198.51.100.9"},
        remote_addr="10.1.2.3",
    )
    assert memory["kafka"].events[0].context["ip"] == "10.1.2.0"


class Exploding(Preprocessor):
    def process(self, event):
        raise RuntimeError("boom")


def test_unexpected_error_is_a_titled_500_and_logged(caplog):
    config = load_file(ROOT / "config" / "tracker.yaml", {})
    memory = {name: MemoryCollector(name, MemoryConfig(healthy=True)) for name in config.collectors}
    preprocessors = {name: p.create() for name, p in config.preprocessors.items()}
    preprocessors["anonymise_ip"] = Exploding("anonymise_ip", {})
    pipeline = Pipeline(memory, preprocessors)
    client = falcon.testing.TestClient(Tracker(config, pipeline).wsgi)
    resp = client.simulate_get("/imp", params={"cid": "c"})
    assert resp.status_code == 500
    assert resp.json == {
        "title": "Internal Server Error",
        "description": "The tracker failed; the error is logged.",
    }
    assert "unhandled error on GET /imp" in caplog.text
    assert memory["kafka"].events == []


def test_json_body_is_parsed_as_utf8(default_app):
    client, memory = default_app
    body = json.dumps({"cid": "c1", "order": "ünï"}, ensure_ascii=False).encode()
    resp = client.simulate_post("/conv", body=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 200
    assert memory["kafka"].events[0].dimensions["order_id"] == "ünï"


def requests_count(path: str, outcome: str) -> float:
    return counted("tracker_requests_total", path=path, outcome=outcome)


JSON = {"Content-Type": "application/json"}
REFUSALS = {
    # Before routing: the request limits.
    "limits": ("_request", "uri_too_long", "GET", "/imp", {"query_string": "a=" + "x" * 5000}),
    # A pixel path: answered with the pixel and a header.
    "pixel": ("impression", "invalid_fields", "GET", "/imp", {"params": {"crid": "x"}}),
    # A JSON path: answered with a titled 4xx.
    "json": ("conversion", "invalid_json", "POST", "/conv", {"body": "[1]", "headers": JSON}),
    # A click: the landing-URL checks.
    "click": (
        "click",
        "unlisted_host",
        "GET",
        "/click",
        {"params": {"cid": "c", "url": "https://evil.example/"}},
    ),
    # A whole batch, refused before its items are read.
    "batch": ("events", "invalid_json", "POST", "/events", {"body": "{}", "headers": JSON}),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_is_counted_exactly_once(default_app, case):
    client, _ = default_app
    label, reason, method, path, kwargs = REFUSALS[case]
    before = (rejected_count(label, reason), requests_count(label, "rejected"))
    resp = client.simulate_request(method, path, **kwargs)
    assert resp.status_code in (200, 302, 400, 413, 414)
    assert (rejected_count(label, reason), requests_count(label, "rejected")) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_a_refused_batch_item_is_counted_once_against_its_own_path(default_app):
    client, _ = default_app
    before = rejected_count("conversion", "invalid_fields")
    resp = client.simulate_post("/events", json=[{"event": "conversion", "value": "x"}])
    assert resp.status_code == 200
    assert resp.json["results"][0]["reason"] == "invalid_fields"
    assert rejected_count("conversion", "invalid_fields") == before + 1


def test_every_request_counter_series_is_there_at_zero_before_the_first_request():
    # The series are created when a worker opens, not by its first requests
    # (each costs a write to the worker's metric file): "unsafe" on /imp, a
    # path that is not durable, can only come from that.
    config = load_file(ROOT / "config" / "tracker.yaml", {})
    tracker, _ = build_app(config)
    text = falcon.testing.TestClient(tracker.wsgi).simulate_get("/metrics").text
    for path in config.paths.values():
        for outcome in ("accepted", "dropped", "unsafe", "rejected"):
            assert f'tracker_requests_total{{outcome="{outcome}",path="{path.name}"}}' in text
        assert f'tracker_events_total{{event_type="{path.event_type}"}}' in text
    assert 'tracker_requests_total{outcome="unsafe",path="impression"} 0.0' in text
    tracker.close(1.0)


def test_collector_and_enrichment_series_are_there_at_zero_before_the_first_request():
    # The first /imp of a worker used to create four series (each collector's
    # events, the log's deliveries, geoip's "no_database"): about a millisecond.
    config = load_file(ROOT / "config" / "tracker.yaml", {})
    tracker, _ = build_app(config)
    text = falcon.testing.TestClient(tracker.wsgi).simulate_get("/metrics").text
    for name in config.collectors:
        assert f'tracker_collector_events_total{{collector="{name}"}}' in text
        assert f'tracker_collector_delivered_total{{collector="{name}"}}' in text
    for name, preprocessor in tracker.pipeline.preprocessors.items():
        for kind in preprocessor.failure_reasons:
            series = f'tracker_enrichment_failures_total{{kind="{kind}",preprocessor="{name}"}}'
            assert series in text
    assert 'tracker_enrichment_failures_total{kind="not_found",preprocessor="geo"} 0.0' in text
    tracker.close(1.0)
