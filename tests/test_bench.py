"""The benchmark's own parts: its scenarios still mean what they say, its figures add up."""

from __future__ import annotations

from urllib.parse import urlsplit

import falcon.testing
import pytest

from loadtest import load, report
from loadtest.scenarios import CLICK_KEYS, REFERENCES, SCENARIOS, Scenario
from loadtest.stages import Stages, environs
from tests import ROOT
from tests.apps import build_app
from tracker.config import load_file

SAMPLE = 100  # the mix repeats every 100 requests


@pytest.fixture(scope="module")
def bench_app():
    """The shipped config with the benchmark's click key, memory collectors."""
    config = load_file(ROOT / "config" / "tracker.yaml", {"TRACKER_CLICK_KEYS": CLICK_KEYS})
    tracker, memory = build_app(config)
    yield falcon.testing.TestClient(tracker.wsgi), memory
    tracker.close(1.0)


def send(client: falcon.testing.TestClient, scenario: Scenario, i: int):
    request = scenario.build(i)
    url = urlsplit(request.target)
    return client.simulate_request(
        request.method,
        url.path,
        query_string=url.query,
        headers=dict(request.headers),
        body=request.body or None,
    )


def outcome(result) -> tuple[bool, bool]:
    """(accepted, refused) as a caller reading the answer sees it; a batch by its items."""
    refused = result.status_code >= 400 or "X-Tracker-Error" in result.headers
    if result.headers.get("Content-Type", "").startswith("application/json"):
        items = (result.json or {}).get("results", [])
        refused = refused or any(item["status"] != "accepted" for item in items)
    return not refused, refused


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_each_scenario_is_answered_as_it_expects(bench_app, scenario):
    client, memory = bench_app
    before = len(memory["kafka"].events)
    seen = [outcome(send(client, scenario, i)) for i in range(SAMPLE)]
    accepted = sum(a for a, _ in seen)
    refused = sum(r for _, r in seen)
    events = len(memory["kafka"].events) - before
    if scenario.expect == "accepted":
        assert (accepted, refused) == (SAMPLE, 0)
        assert events == SAMPLE * scenario.events_per_request
    elif scenario.expect == "rejected":
        assert (accepted, refused, events) == (0, SAMPLE, 0)
    else:
        assert accepted and refused and events


def test_requests_are_distinct_so_every_event_does_full_work():
    for scenario in (*REFERENCES, *SCENARIOS):
        targets = {scenario.build(i).target + scenario.build(i).body for i in range(SAMPLE)}
        assert len(targets) == SAMPLE, scenario.name


def test_the_signed_click_redirects_to_the_filled_landing_url(bench_app):
    client, _ = bench_app
    click = next(s for s in SCENARIOS if s.name == "click")
    result = send(client, click, 3)
    assert result.status_code == 302
    assert result.headers["Location"].startswith("https://www.example.com/landing?click=")


def test_wrk_output_is_read_from_the_bench_line():
    out = (
        "Running 2s test\nBENCH "
        '{"requests":2000,"duration_us":2000000,"bytes":1,"p50_us":1500,"p90_us":2000,'
        '"p99_us":4000,"p999_us":9000,"max_us":12000,"connect_errors":1,"read_errors":2,'
        '"write_errors":0,"timeouts":3,"non_2xx_3xx":7}\n'
    )
    result = load.parse_wrk(out)
    assert (result.rps, result.p99_ms, result.p999_ms) == (1000.0, 4.0, 9.0)
    assert (result.errors, result.non_2xx_3xx) == (6, 7)
    with pytest.raises(RuntimeError, match="no BENCH line"):
        load.parse_wrk("unable to connect to 127.0.0.1:1\n")


def test_vegeta_results_give_percentiles_errors_and_the_achieved_rate():
    rows = [f"{i * 1_000_000},204,{(i + 1) * 1_000_000},0,0,,,,{i},GET,u,\n" for i in range(1000)]
    rows[10] = "10000000,503,11000000,0,0,,,,10,GET,u,\n"
    rows[11] = "11000000,0,12000000,0,0,connection refused,,,11,GET,u,\n"
    result = load.parse_vegeta_csv("".join(rows), rate=1000)
    assert (result.p50_ms, result.p99_ms, result.p999_ms, result.max_ms) == (500, 990, 999, 1000)
    assert result.errors == 2
    assert result.achieved_rps == pytest.approx(1000, rel=0.01)


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 1001)]
    assert [load.percentile(values, p) for p in (50, 90, 99, 99.9, 100)] == [
        500,
        900,
        990,
        999,
        1000,
    ]
    assert load.percentile([7.0], 99.9) == 7.0


def test_the_table_shows_ratios_and_a_kafka_mismatch():
    rows = [
        {"name": "nginx", "rps": 40000.0},
        {"name": "falcon", "rps": 8000.0},
        {"name": "imp", "rps": 2000.0},
    ]
    report.add_ratios(rows[2:], rows[:2])
    assert (rows[2]["vs_nginx"], rows[2]["vs_falcon"]) == (0.05, 0.25)
    results = {
        "started": "2026-01-01T00:00:00Z",
        "seconds": 1,
        "machine": {"cpu": "cpu", "cores": 2, "memory_gib": 1, "load_average": [1.0]},
        "settings": {
            "smoke": "True",
            "connections": 32,
            "duration": 2,
            "workers": 1,
            "latency_duration": 1,
            "latency_workers": 2,
        },
        "throughput": [],
        "latency": [],
        "worker_rss_mib": {"throughput": [40.0]},
        "kafka": {"accepted": 10, "arrived": 9},
        "problems": ["KAFKA COUNT MISMATCH"],
    }
    text = report.markdown(results)
    assert "10 events accepted for Kafka, 9 arrived (MISMATCH)." in text
    assert "PROBLEM: KAFKA COUNT MISMATCH" in text


def test_stages_time_every_stage_of_an_impression(bench_app):
    stages = Stages(bench_app[0].app, "/imp")
    for environ in environs(3):
        stages.run(environ)
    assert {name: len(ns) for name, ns in stages.times.items()} == {
        "Falcon request and response objects": 3,
        "extract and gather fields, request context": 3,
        "validation (marshmallow fields via validation.Loader)": 3,
        "event build (dimensions, metrics, ids, time)": 3,
        "consent decision and user cookie": 3,
        "preprocessor bots": 3,
        "preprocessor anonymise_ip": 3,
        "request and event counters": 3,
        "collect: kafka (MemoryCollector)": 3,
        "collect: log (MemoryCollector)": 3,
        "response (pixel)": 3,
    }
