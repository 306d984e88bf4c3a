"""The benchmark's own parts: its scenarios still mean what they say, its figures add up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import falcon.testing
import pytest

from collectors.banker import BankerCollector
from collectors.banker.options import BankerOptions
from collectors.memory import MemoryCollector, MemoryConfig
from loadtest import banker, charts, floods, load, report
from loadtest.bench import Run
from loadtest.scenarios import CLICK_KEYS, REFERENCES, SCENARIOS, Scenario
from loadtest.settings import Settings
from loadtest.stages import Stages, environs
from tests import ROOT
from tests.apps import build_app, simulate
from tracker.config import load_file
from tracker.http.app import Tracker
from tracker.intake.pipeline import Pipeline

SAMPLE = 100  # the mix repeats every 100 requests


@pytest.fixture(scope="module")
def bench_app():
    """The shipped config with the benchmark's click key, memory collectors."""
    config = load_file(ROOT / "config" / "tracker.yaml", {"TRACKER_CLICK_KEYS": CLICK_KEYS})
    tracker, memory = build_app(config)
    yield falcon.testing.TestClient(tracker.wsgi), memory
    tracker.close(1.0)


def send(client: falcon.testing.TestClient, scenario: Scenario, i: int):
    return simulate(client, scenario.build(i))


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
        "validation (marshmallow fields via checks.Loader)": 3,
        "event build (dimensions, metrics, ids, time)": 3,
        "consent decision and user cookie": 3,
        "preprocessor bots": 3,
        "preprocessor device": 3,
        "preprocessor geo": 3,
        "preprocessor anonymise_ip": 3,
        "request and event counters": 3,
        "collect: kafka (MemoryCollector)": 3,
        "collect: log (MemoryCollector)": 3,
        "response (pixel)": 3,
    }


def test_the_config_without_the_banker_differs_in_the_banker_only(tmp_path):
    source = ROOT / "config" / "tracker.yaml"
    config = load_file(source, {})
    plain = load_file(banker.without_banker(source, config, tmp_path / "plain.yaml"), {})
    assert banker.bankers(config) == ["banker"]
    assert banker.bankers(plain) == []
    assert "banker" not in plain.collectors
    assert plain.paths["billing"].collectors == ("kafka", "log", "partner")
    for name, path in config.paths.items():
        assert [c for c in path.collectors if c != "banker"] == list(plain.paths[name].collectors)


def test_each_bill_plain_latency_run_follows_bill_at_the_same_rate():
    run = Run(Settings.from_env({"BENCH_SMOKE": "1", "BENCH_ONLY": "bill,win"}))
    assert [s.name for s in run.scenarios] == ["win", "bill", "bill-plain"]
    run.throughput = [{"name": n, "rps": 1000.0} for n in ("nginx", "falcon", "win")]
    run.throughput += [{"name": "bill", "rps": 300.0}, {"name": "bill-plain", "rps": 900.0}]
    order = [(s.name, rate) for s, rate in run.latency_runs()]
    assert order[-4:] == [("bill", 150), ("bill-plain", 150), ("bill", 1000), ("bill-plain", 1000)]


@pytest.fixture
def banker_app(redis_node, tmp_path):
    """The shipped config with memory collectors, but a real banker on the test Redis."""
    config = load_file(ROOT / "config" / "tracker.yaml", {"TRACKER_CLICK_KEYS": CLICK_KEYS})
    options = {
        "redis_url": redis_node.url,
        "key_prefix": "bench" + uuid.uuid4().hex[:8],
        "flush_interval": 0.02,
        "spool": {"directory": str(tmp_path / "spool")},
    }
    collector = BankerCollector("banker", BankerOptions().load(options))
    collectors = {
        name: MemoryCollector(name, MemoryConfig(healthy=True)) for name in config.collectors
    }
    collectors["banker"] = collector
    preprocessors = {name: p.create() for name, p in config.preprocessors.items()}
    filters = {name: p.filter for name, p in config.collectors.items()}
    tracker = Tracker(config, Pipeline(collectors, preprocessors, filters))
    tracker.open()
    yield config, falcon.testing.TestClient(tracker.wsgi), collectors
    tracker.close(5.0)


def ledger_check(config, collectors) -> tuple[dict, list[str]]:
    assert collectors["banker"].flush(15.0) == 0
    events = [e.to_dict() for e in collectors["kafka"].events]
    return banker.check(config, events, collectors["banker"]._ledger(), "banker")


@pytest.mark.redis
def test_the_ledger_check_holds_for_the_benchmark_notices_and_catches_a_difference(banker_app):
    config, client, collectors = banker_app
    scenarios = {s.name: s for s in SCENARIOS}
    for name, count in (("bill", 60), ("bill", 30), ("events", 10), ("rejected", 20), ("mix", 100)):
        for i in range(count):  # the second pass of bill: duplicates, refused by the ledger
            assert send(client, scenarios[name], i).status_code < 500
    audit = client.simulate_get("/bill", query_string="aid=audit-1&cid=c-1&price=AUDIT")
    assert audit.status_code == 204
    figures, problems = ledger_check(config, collectors)
    assert problems == []
    # 60 distinct /bill; of the batches' 20 billings, 14 carry auction ids of
    # those 60 (the same event id) and 6 are new; 5 in the mix. The AUDIT
    # notice, the refused price macros and the 30 repeats add nothing.
    assert figures["distinct_billable"] == 60 + 6 + 5
    assert figures["notices_accepted"] == 90 + 20 + 5 + 1
    expected = banker.expected_spend(
        [e.to_dict() for e in collectors["kafka"].events],
        {"billing": "spend_micros"},
        "campaign_id",
    )
    assert figures["spend_micros"] == sum(m for m, _ in expected.campaigns.values()) > 0
    # Every benchmark notice names one of three line items; they add up to the campaign.
    assert figures["line_items"] == sum(len(i) for i in expected.line_items.values()) > 3
    for campaign, items in expected.line_items.items():
        assert sum(m for m, _ in items.values()) == expected.campaigns[campaign][0]

    ledger = collectors["banker"]._ledger()
    base = ledger.keys.base("c-2")
    ledger.client.hincrby(f"{base}:total", "spend_micros", 1)
    _, problems = ledger_check(config, collectors)
    assert len(problems) == 1
    assert problems[0].startswith("BANKER LEDGER MISMATCH: campaign c-2: ")
    assert problems[0].endswith(f"worth {expected.campaigns['c-2'][0] + 1}")

    ledger.client.hincrby(f"{base}:total", "spend_micros", -1)
    line_item = sorted(expected.line_items["c-2"])[0]
    ledger.client.hincrby(f"{base}:li:{line_item}", "spend_micros", 7)
    _, problems = ledger_check(config, collectors)
    micros, count = expected.line_items["c-2"][line_item]
    assert problems == [
        f"BANKER LEDGER MISMATCH: campaign c-2 line item {line_item}: {count} distinct notices "
        f"worth {micros} micros accepted, the ledger holds {count} worth {micros + 7}"
    ]


@pytest.mark.redis
def test_the_ledger_check_fails_when_the_tracker_without_the_banker_still_banks(banker_app):
    config, client, collectors = banker_app
    bill_plain = next(s for s in SCENARIOS if s.name == "bill-plain")
    for i in range(4):
        assert send(client, bill_plain, i).status_code == 204
    figures, problems = ledger_check(config, collectors)
    assert figures["notices_without_banker"] == 4
    assert figures["distinct_billable"] == 0
    assert len(problems) == 4
    assert all("but no accepted notice" in p for p in problems)


def test_the_table_shows_the_banker_both_ways_and_a_ledger_mismatch():
    row = {"p99_ms": 0.0, "achieved_rps": 0.0}
    results = {
        "throughput": [
            {"name": "bill", "rps": 450.0, "p99_ms": 30.0},
            {"name": "bill-plain", "rps": 500.0, "p99_ms": 20.0},
        ],
        "latency": [
            {**row, "name": "bill", "rate": 250, "p99_ms": 12.0, "achieved_rps": 250.0},
            {**row, "name": "bill-plain", "rate": 250, "p99_ms": 8.0, "achieved_rps": 250.0},
        ],
        "banker": {
            "freshness": {
                "rate": 200,
                "notices": 200,
                "achieved_rps": 199.0,
                "visible": 200,
                "errors": 0,
                "p50_ms": 55.0,
                "p99_ms": 110.0,
                "max_ms": 120.0,
            },
            "ledger": {
                "notices_accepted": 10,
                "distinct_billable": 8,
                "campaigns": 4,
                "line_items": 6,
                "spend_micros": 16000,
                "notices_without_banker": 0,
                "mismatches": 1,
            },
            "collector": {
                "notices": 100,
                "collect_p50_us": 2.0,
                "collect_p99_us": 9.0,
                "collect_mean_us": 3.0,
                "lua_batch": 500,
                "lua_p50_ms": 7.0,
                "lua_max_ms": 9.0,
                "lua_us_per_notice": 14.0,
                "client_cpu_us_per_notice": 6.0,
            },
        },
    }
    text = "\n".join(report.banker_lines(results))
    assert "| req/s, closed loop | 450 | 500 | 0.90 |" in text
    assert "| p99 ms, closed loop | 30.00 | 20.00 | 1.50 |" in text
    assert "| p99 ms at 250 req/s (achieved 250 and 250) | 12.00 | 8.00 | 1.50 |" in text
    assert "p50 55.0 ms, p99 110.0 ms" in text
    assert "in 4 campaigns and 6 line items, 16,000 micros" in text
    assert "(1 campaigns or line items differ in the ledger: MISMATCH)." in text
    assert "14.0 µs per notice, of which 6.0 µs of the flushing thread's CPU." in text


def test_enrichment_miss_costs_are_measured(tmp_path):
    from loadtest.enrich import MIX, miss_costs, miss_table, write_database

    assert len(MIX) == 20
    costs = miss_costs(write_database(tmp_path))
    text = miss_table(costs)
    assert "| user_agent parse (cache miss) |" in text
    assert "| geoip lookup (cache miss) |" in text
    assert costs["memory"]["user_agent"] > 0 and costs["memory"]["geoip"] > 0


def test_a_vegeta_run_is_cut_into_windows_by_send_time_and_the_worst_is_kept():
    # 5 windows of 200 requests, 1 ms apart; the third window holds one 40 ms stall.
    rows = []
    for i in range(1000):
        latency = 40_000_000 if i == 450 else 1_000_000 + (i % 10) * 100_000
        rows.append(f"{i * 1_000_000},200,{latency},0,0,,,,{i},GET,u,\n")
    result = load.parse_vegeta_csv("".join(rows), rate=1000, windows=5)
    assert [w.requests for w in result.windows] == [200] * 5
    assert [w.max_ms for w in result.windows] == [1.9, 1.9, 40.0, 1.9, 1.9]
    assert result.max_ms == result.worst_max_ms == 40.0
    assert result.worst_p99_ms == max(w.p99_ms for w in result.windows)
    assert load.parse_vegeta_csv("".join(rows), rate=1000).windows == ()


def flood_run(statuses: dict[str, int], errors: int = 0, p99: float = 2.0) -> dict:
    sent = sum(statuses.values())
    return {
        "sent": sent,
        "sent_per_s": sent / 10,
        "statuses": statuses,
        "transport_errors": errors,
        "share_200": statuses.get("200", 0) / sent,
        "p50_ms": 1.0,
        "p99_ms": p99,
        "max_ms": 3 * p99,
    }


def test_the_flood_phase_judges_every_shape_and_shows_the_worst_good_p99():
    shapes = [
        {
            "kind": kind,
            "connections": cap,
            "good": flood_run({"200": 3000}, p99=cap / 8),
            "bad": flood_run({"400": 29000, "404": 1000}),
            "cost": {
                "cpu_us": {"tracker": 200 + cap, "vegeta": 180, "kafka": 9},
                "idle_share": 0.3,
            },
        }
        for cap in floods.CONNECTIONS
        for kind in floods.BAD_KINDS
    ]
    figures = {
        "good_rate": 300,
        "bad_rate": 3000,
        "seconds": 10,
        "alone": flood_run({"200": 3000}),
        "shapes": shapes,
        "worst_good_p99_ms": 64.0,
        "worst_good_max_ms": 192.0,
        "lowest_good_share_200": 1.0,
    }
    assert floods.problems(figures) == []
    text = "\n".join(floods.lines(figures))
    assert "Worst good p99 under a flood: 64.00 ms (max 192.0 ms)" in text
    assert "| macro | 2.00 / 6, 3,000 | 8.00 / 24, 3,000 | 64.00 / 192, 3,000 |" in text
    assert "| macro | 216 / 180 / 9, 30% | 264 / 180 / 9, 30% | 712 / 180 / 9, 30% |" in text
    shapes[0]["good"] = flood_run({"200": 2990, "503": 10})
    shapes[1]["bad"] = flood_run({"0": 5, "400": 100}, errors=5)
    found = floods.problems(figures)
    assert found[0].startswith("good traffic, 404 flood on 16 connections: 99.67% answered 200")
    assert found[1].startswith("good traffic, 404 flood on 16 connections: a 5xx")
    assert found[2] == "macro flood on 16 connections: 5 requests without an answer"


def test_each_bad_kind_is_refused_and_the_good_flood_traffic_answered_200(bench_app):
    client, _ = bench_app
    for kind, targets in floods.BAD_KINDS.items():
        for target in targets:
            path, _, query = target.partition("?")
            result = client.simulate_get(path, query_string=query, headers={"User-Agent": "x"})
            # A pixel answers a refusal 200 with the reason in X-Tracker-Error.
            assert outcome(result) == (False, True), (kind, target, result.status_code)
            assert result.status_code < 500
    for target in floods.GOOD:
        path, _, query = target.decode().partition("?")
        result = client.simulate_get(path, query_string=query)
        assert (result.status_code, outcome(result)) == (200, (True, False))


def test_the_latency_chart_shows_every_window_and_a_single_rate_reads_plainly(tmp_path):
    window = {"p99_ms": 2.0, "max_ms": 9.0}
    row = {
        "p50_ms": 0.5,
        "p99_ms": 3.0,
        "max_ms": 40.0,
        "windows": [window] * 4 + [{"p99_ms": 3.0, "max_ms": 40.0}],
    }
    results = {
        "throughput": [{"title": "imp", "rps": 1000.0, "accepted": 1, "vs_falcon": 0.3}],
        "latency": [
            {"name": "bill", "rate": 1000, **row},
            {"name": "imp", "rate": 1000, **row},
            {"name": "imp", "rate": 2000, **row},
        ],
    }
    fig = charts.latency_figure(results)
    fig.canvas.draw()
    bill, imp = fig.axes[:2]
    assert [t.get_text() for t in bill.get_xticklabels()] == ["1,000"]
    assert bill.xaxis.get_offset_text().get_text() == ""
    assert [t.get_text() for t in imp.get_xticklabels()] == ["1,000", "2,000"]
    # Every window is a point: five p99s and five maxima per rate.
    assert sorted(
        len(line.get_ydata()) for line in bill.get_lines() if line.get_marker() in "ov"
    ) == [5, 5]
    assert [p.name for p in charts.draw(results, tmp_path)] == ["throughput.png", "latency.png"]


def test_a_flood_window_costs_what_each_server_and_the_load_tool_spent_per_request():
    tracker = iter([1.0, 1.5])
    start = floods._counters({"tracker": lambda: next(tracker)})
    # A child process that burns CPU and is reaped counts as the load tool, as vegeta does.
    subprocess.run([sys.executable, "-c", "sum(range(3 * 10**6))"], check=True)
    cost = floods._cost(start, floods._counters({"tracker": lambda: next(tracker)}), 1000)
    assert cost["cpu_us"]["tracker"] == 500
    assert cost["cpu_us"]["vegeta"] > 0
    assert 0.0 <= cost["idle_share"] <= 1.0
    # Two seconds in which the machine was idle for one, on every core.
    start = ({"tracker": 0.0, "vegeta": 0.0}, 0.0, 0.0)
    end = ({"tracker": 0.2, "vegeta": 0.1}, os.cpu_count() * 1.0, 2.0)
    assert floods._cost(start, end, 1000) == {
        "cpu_us": {"tracker": 200, "vegeta": 100},
        "idle_share": 0.5,
    }


def test_a_flood_answer_is_a_status_and_no_status_is_a_request_without_an_answer():
    # vegeta writes the status text into its error column for a 4xx as well.
    rows = [
        ["1000000", "404", "2000000", "0", "0", "404 Not Found", "", "", "0", "GET", "u", ""],
        ["2000000", "200", "1000000", "0", "0", "", "", "", "1", "GET", "u", ""],
        ["3000000", "0", "9000000", "0", "0", "EOF", "", "", "2", "GET", "u", ""],
    ]
    figures = floods._summary(rows, 1.0)
    assert figures["statuses"] == {"0": 1, "200": 1, "404": 1}
    assert figures["transport_errors"] == 1
    assert figures["share_200"] == round(1 / 3, 5)


def test_a_background_attack_is_read_while_it_runs():
    # vegeta writes a result per request; a pipe nobody reads holds 64 KB and
    # then blocks it (the flood phase sent a tenth of its 3,000 req/s that way).
    writes = "import sys\nfor _ in range(64): sys.stdout.buffer.write(b'x' * 16384)\n"
    attack = load.Attack([sys.executable, "-c", writes])
    deadline = time.monotonic() + 10
    while attack.popen.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert attack.popen.poll() == 0, "the attack blocked on its own output"
    assert len(attack.results(timeout=5)) == 64 * 16384
