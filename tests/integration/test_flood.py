"""Good impressions at a constant rate, alone and under a flood of bad requests.

Good traffic runs at 300 req/s; the flood is 3,000 bad req/s (oversized fields,
unlisted click hosts, unfilled price macros, unknown paths), both open-loop
from ``loadtest/flood.py`` in their own processes, against real gunicorn with
two meinheld workers. The test prints the good traffic's p99 alone and flooded
(the benchmark's figures) and asserts only correctness: no 5xx, every good
impression answered with its pixel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests import ROOT
from tests.integration.live import Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLOOD = str(ROOT / "loadtest" / "flood.py")
GOOD_RATE, BAD_RATE, SECONDS = 300, 3000, 8


def generator(
    port: int, kind: str, rate: int, seconds: float, connections: int
) -> subprocess.Popen:
    args = [sys.executable, FLOOD, "--port", str(port), "--kind", kind]
    args += ["--rate", str(rate), "--seconds", str(seconds), "--connections", str(connections)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def figures(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    return json.loads(out)


def test_good_p99_alone_and_under_a_flood_of_bad_requests(tmp_path, broker, capsys):
    server = Server(tmp_path, broker)  # the shipped log level: every refusal is logged
    server.setup_topics()
    server.start()
    try:
        alone = figures(generator(server.port, "good", GOOD_RATE, SECONDS, 8))
        # Enough connections that the flood's rate holds while answers are slow.
        bad = generator(server.port, "bad", BAD_RATE, SECONDS + 2, 300)
        time.sleep(1)
        flooded = figures(generator(server.port, "good", GOOD_RATE, SECONDS, 8))
        flood = figures(bad)
        workers = len(server.workers())
    finally:
        server.stop()
    with capsys.disabled():
        print(
            f"\nflood: good {GOOD_RATE} req/s alone p50 {alone['p50_ms']} ms p99 "
            f"{alone['p99_ms']} ms; with bad at {BAD_RATE} req/s (sent {flood['sent_per_s']}/s, "
            f"answered {flood['answered_per_s']}/s) "
            f"p50 {flooded['p50_ms']} ms p99 {flooded['p99_ms']} ms max {flooded['max_ms']} ms"
            f"\nflood: good alone {alone}\nflood: good flooded {flooded}\nflood: bad {flood}"
        )
    for run in (alone, flooded):
        assert run["statuses"] == {"200": run["sent"]}, run
    assert not [s for s in flood["statuses"] if int(s) >= 500], flood
    assert flood["dropped"] == 0, flood
    assert workers == 2
