"""Good impressions at a constant rate, alone and under a flood of bad requests.

Good traffic runs at 300 req/s; the flood is 3,000 bad req/s (oversized fields,
unlisted click hosts, unfilled price macros, unknown paths), both open-loop
from ``loadtest/flood.py`` in their own processes, against real gunicorn with
two meinheld workers. The test prints the good traffic's p99 alone and flooded
(the benchmark's figures) and asserts only correctness: no 5xx, every good
impression answered with its pixel.
"""

from __future__ import annotations

import pytest

from loadtest import flood
from tests.integration.live import Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECONDS = 8


def test_good_p99_alone_and_under_a_flood_of_bad_requests(tmp_path, broker, capsys):
    server = Server(tmp_path, broker)  # the shipped log level: every refusal is logged
    server.setup_topics()
    server.start()
    try:
        figures = flood.phase(server.port, SECONDS)
        workers = len(server.workers())
    finally:
        server.stop()
    alone, flooded, bad = figures["alone"], figures["flooded"], figures["bad"]
    with capsys.disabled():
        print(
            f"\nflood: good {flood.GOOD_RATE} req/s alone p50 {alone['p50_ms']} ms p99 "
            f"{alone['p99_ms']} ms; with bad at {flood.BAD_RATE} req/s "
            f"(sent {bad['sent_per_s']}/s, answered {bad['answered_per_s']}/s) "
            f"p50 {flooded['p50_ms']} ms p99 {flooded['p99_ms']} ms max {flooded['max_ms']} ms"
            f"\nflood: good alone {alone}\nflood: good flooded {flooded}\nflood: bad {bad}"
        )
    assert flood.problems(figures) == []
    assert alone["sent"] == flooded["sent"] == flood.GOOD_RATE * SECONDS
    assert workers == 2
