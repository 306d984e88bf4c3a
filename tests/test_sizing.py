"""docs/deploy/README.md's sizing table is what the benchmark's figures give."""

from __future__ import annotations

import json

from loadtest import sizing


def test_the_committed_sizing_table_follows_results_json_and_the_values_files():
    results = json.loads(sizing.RESULTS.read_text(encoding="utf-8"))
    text = sizing.GUIDE.read_text(encoding="utf-8")
    assert sizing.rewritten(text, sizing.section(results)) == text, (
        "docs/deploy/README.md's sizing table is stale: python -m loadtest.sizing --write"
    )


def test_the_pod_rate_is_the_lower_measure_and_the_pods_cover_the_peak():
    results = json.loads(sizing.RESULTS.read_text(encoding="utf-8"))
    fig = sizing.figures(results)
    fig["mix_per_worker"], fig["held_per_worker"] = 600.0, 1000.0
    assert sizing.pod_rate(fig, 2, 0.65) == 780.0  # saturation decides
    fig["held_per_worker"] = 200.0
    assert sizing.pod_rate(fig, 2, 0.65) == 400.0  # the held rate decides
    assert sizing.pods_for(10_000, 400.0) == 25
    assert sizing.pods_for(100, 400.0) == 3  # one per zone at least


def test_a_new_benchmark_run_makes_the_table_stale():
    results = json.loads(sizing.RESULTS.read_text(encoding="utf-8"))
    text = sizing.GUIDE.read_text(encoding="utf-8")
    for row in results["throughput"]:
        if row["name"] == "mix":
            row["rps"] *= 2
    assert sizing.rewritten(text, sizing.section(results)) != text
