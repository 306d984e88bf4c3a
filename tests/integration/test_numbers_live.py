"""Numbers over real HTTP: one strict reading in query, form and JSON, and a maximum everywhere.

The absurd ``ts`` of issue 18 is sent to ``/bill`` with the banker on a real
Redis: it used to overflow a float in the banker after the event was written,
so every retry of the notice was answered 503. The field's maximum refuses it
with a 400 before anything is written.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest

from tests.integration.live import request
from tests.integration.test_banker import banker_servers
from tracker.intake.fields.schema import NOT_A_DECIMAL, NOT_AN_INTEGER

pytestmark = [pytest.mark.integration]

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "value", ["1E2", "1e2", "1_0", "\u0661\u0660", "+5", "Infinity", "0x10", "1.", " 1"]
)
def test_a_lenient_value_on_conv_is_refused(server, value):
    query = urllib.parse.urlencode({"cid": "c1", "value": value})
    status, _, body = server.get(f"/conv?{query}")
    assert status == 400
    assert json.loads(body)["errors"] == {"value": [NOT_A_DECIMAL]}


@pytest.mark.parametrize("body", [b'{"cid": "c1", "quantity": 1.9}', b"cid=c1&quantity=1_0"])
def test_a_fraction_or_separator_in_quantity_is_refused_not_truncated(server, body):
    ctype = "application/json" if body.startswith(b"{") else "application/x-www-form-urlencoded"
    status, _, answer = request(server.port, "POST", "/conv", body, {"Content-Type": ctype})
    assert status == 400
    assert json.loads(answer)["errors"] == {"quantity": [NOT_AN_INTEGER]}


def test_a_json_price_with_an_exponent_is_refused_in_a_batch(server):
    items = b'[{"event": "win", "aid": "n1", "price": 1e3}, {"event": "loss", "aid": "n2", '
    items += b'"loss": 1.9}, {"event": "win", "aid": "n3", "price": 2.5}]'
    status, _, body = request(server.port, "POST", "/events", items, JSON)
    assert status == 200
    results = json.loads(body)["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "accepted"]
    assert "exponent" in results[0]["errors"]["price"][0]
    assert results[1]["errors"] == {"loss": [NOT_AN_INTEGER]}


@pytest.mark.redis
def test_an_absurd_ts_on_bill_is_a_400_before_the_banker_sees_it(server_factory, redis_node):
    (server,) = banker_servers(server_factory, redis_node, "n" + uuid.uuid4().hex[:6], 1)
    for ts in ["9" * 400, "1" + "0" * 20, "10000000000000"]:
        status, _, body = server.get(f"/bill?aid=ts-{len(ts)}&cid=c1&price=1.5&ts={ts}")
        assert status == 400, body
        assert json.loads(body)["errors"] == {
            "auction_ts": [
                "Must be greater than or equal to 0 and less than or equal to 9999999999999."
            ]
        }
    # The largest ts the field takes, in milliseconds, is spent like any notice.
    status, _, _ = server.get("/bill?aid=ts-ok&cid=c1&price=1.5&ts=9999999999999")
    assert status == 204
