"""Tracker servers with the banker on the test Redis, for the money and identity tests."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import yaml

from tests import ROOT
from tests.integration.live import Server, request
from tracker.adtech.pricecrypto import PriceCrypto

# Google's published example keys (see tests/test_openrtb.py): not secrets.
PRICE_KEYS = {
    "TRACKER_PRICE_ENCRYPTION_KEY": "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=",
    "TRACKER_PRICE_INTEGRITY_KEY": "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=",
}
CRYPTO = PriceCrypto.from_config(
    PRICE_KEYS["TRACKER_PRICE_ENCRYPTION_KEY"], PRICE_KEYS["TRACKER_PRICE_INTEGRITY_KEY"]
)


def bank_server(tmp_path, broker, redis, prefix: str = "", **env: str) -> Server:
    """Start one tracker whose ``/bill`` feeds the shipped banker block, under a fresh prefix.

    ``prefix``: another server's, for a replica of it (the same ledger).
    """
    server = Server(tmp_path, broker, TRACKER_REDIS_URL=redis.url, **env)
    data = yaml.safe_load(server.config.read_text())
    shipped = yaml.safe_load((ROOT / "config" / "tracker.yaml").read_text())
    block = data["collectors"]["banker"] = shipped["collectors"]["banker"]
    data["paths"]["billing"]["collectors"].append("banker")
    server.prefix = prefix or "m" + uuid.uuid4().hex[:8]
    block.update(key_prefix=server.prefix, cluster=redis.cluster, flush_interval=0.05)
    block["budget_events"]["topic"] = f"tracker-budget-{server.prefix}"
    server.config.write_text(yaml.safe_dump(data, sort_keys=False))
    server.setup_topics()
    return server.start()


def banker(server: Server, *args: str) -> subprocess.CompletedProcess:
    """``tracker banker ...`` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tracker", "banker", *args],
        env=server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def settled(read, expected, timeout: float = 15.0):
    """Poll ``read()`` until it returns ``expected``, then once more after a pause."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    time.sleep(0.3)  # a late second spend would show now
    return read()


def post_form(server: Server, path: str, body: str) -> tuple[int, dict, bytes]:
    """A form POST, as an exchange that posts its notices sends it."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return request(server.port, "POST", path, body=body.encode(), headers=headers)
