"""Numbers are read one strict way, whether they come in the query, a form or JSON.

The grammar is :mod:`tracker.intake.fields.numbers`'s; docs/configuration.md
states it for callers. The same over real HTTP is in
``tests/integration/test_bodies_live.py``.
"""

from __future__ import annotations

import falcon.testing
import pytest

from tests import ROOT
from tests.apps import build_app
from tracker.config import load_file
from tracker.intake.fields import numbers
from tracker.intake.fields.schema import NOT_A_DECIMAL, NOT_AN_INTEGER

#: Texts that Python's int(), float() or Decimal() would take, and the tracker does not.
LENIENT = [
    "1E2",
    "1e2",
    "1_0",
    "\u0661\u0660",  # Arabic-Indic 10
    "\uff11",  # fullwidth 1
    "+1",
    " 1",
    "1 ",
    "1.",
    ".5",
    "NaN",
    "Infinity",
    "1,5",
    "0x10",
    "",
]


@pytest.fixture(scope="module")
def app():
    tracker, memory = build_app(load_file(ROOT / "config" / "tracker.yaml", {}))
    yield falcon.testing.TestClient(tracker.wsgi), memory
    tracker.close(1.0)


@pytest.fixture(autouse=True)
def empty(app):
    for collector in app[1].values():
        collector.events.clear()


def conv(client, source: str, **values):
    """``/conv`` with ``values`` in the query, a form or a JSON body (as JSON strings)."""
    fields = {"cid": "c1", **values}
    if source == "query":
        return client.simulate_get("/conv", params=fields)
    if source == "form":
        return client.simulate_post(
            "/conv",
            body=falcon.to_query_str(fields, prefix=False),
            content_type=falcon.MEDIA_URLENCODED,
        )
    return client.simulate_post("/conv", json=fields)


@pytest.mark.parametrize("source", ["query", "form", "json"])
@pytest.mark.parametrize("text", [t for t in LENIENT if t])
def test_a_lenient_decimal_is_refused_from_every_source(app, source, text):
    resp = conv(app[0], source, value=text)
    assert resp.status_code == 400
    assert resp.json["errors"] == {"value": [NOT_A_DECIMAL]}
    assert app[1]["kafka"].events == []


@pytest.mark.parametrize("source", ["query", "form", "json"])
@pytest.mark.parametrize("text", [t for t in LENIENT if t] + ["1.9", "2.0"])
def test_a_lenient_integer_is_refused_from_every_source(app, source, text):
    resp = conv(app[0], source, quantity=text)
    assert resp.status_code == 400
    assert resp.json["errors"] == {"quantity": [NOT_AN_INTEGER]}


@pytest.mark.parametrize("source", ["query", "form", "json"])
def test_a_plain_number_is_read_the_same_from_every_source(app, source):
    resp = conv(app[0], source, value="12.5", quantity="003")
    assert resp.status_code == 200
    (event,) = app[1]["kafka"].events
    assert (event.metrics["value_micros"], event.metrics["quantity"]) == (12_500_000, 3)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (b'{"cid": "c1", "quantity": 1.9}', {"quantity": [NOT_AN_INTEGER]}),
        (b'{"cid": "c1", "quantity": 2.0}', {"quantity": [NOT_AN_INTEGER]}),
        (b'{"cid": "c1", "quantity": 1e1}', {"quantity": [NOT_AN_INTEGER]}),
        (b'{"cid": "c1", "value": 1e2}', {"value": [NOT_A_DECIMAL]}),
        (b'{"cid": "c1", "value": 1E-7}', {"value": [NOT_A_DECIMAL]}),
        (b'{"cid": "c1", "value": 1.0000001}', {"value": ["More than 6 decimal places."]}),
        (b'{"cid": "c1", "order": 12.5}', {"order_id": ["Not a valid string."]}),
        (b'{"cid": "c1", "order": 12}', {"order_id": ["Not a valid string."]}),
    ],
)
def test_a_json_number_is_read_as_its_text(app, body, errors):
    resp = app[0].simulate_post("/conv", body=body, content_type=falcon.MEDIA_JSON)
    assert resp.status_code == 400
    assert resp.json["errors"] == errors


def test_json_numbers_that_are_plain_are_taken(app):
    body = b'{"cid": "c1", "value": 12.25, "quantity": 4}'
    resp = app[0].simulate_post("/conv", body=body, content_type=falcon.MEDIA_JSON)
    assert resp.status_code == 200
    (event,) = app[1]["kafka"].events
    assert (event.metrics["value_micros"], event.metrics["quantity"]) == (12_250_000, 4)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(app, constant):
    body = b'{"cid": "c1", "value": ' + constant + b"}"
    resp = app[0].simulate_post("/conv", body=body, content_type=falcon.MEDIA_JSON)
    assert (resp.status_code, resp.json["reason"]) == (400, "invalid_json")


PRICE_ERROR = (
    "price '1e3' is not a decimal CPM like 1.25 (no sign, exponent or separators), or is an "
    "encrypted price and no price keys are configured"
)


def test_a_batch_price_with_an_exponent_is_refused_as_docs_events_md_says(app):
    items = b'[{"event": "win", "aid": "a1", "price": 1e3},'
    items += b' {"event": "win", "aid": "a2", "price": 1.5}]'
    resp = app[0].simulate_post("/events", body=items, content_type=falcon.MEDIA_JSON)
    assert resp.status_code == 200
    first, second = resp.json["results"]
    assert (first["status"], first["errors"]) == ("rejected", {"price": [PRICE_ERROR]})
    assert second["status"] == "accepted"
    (event,) = app[1]["kafka"].events
    assert event.metrics["clearing_price_micros"] == 1500


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("-7", -7), ("007", 7), ("9" * 21, 10**20), ("-" + "9" * 400, -(10**20))],
)
def test_integer_texts(text, value):
    assert numbers.integer(text) == value


def test_a_huge_text_is_read_as_out_of_range_without_converting_it():
    assert numbers.integer("0" * 100 + "12") == 12
    assert numbers.decimal("9" * 50_000 + ".5") == 10**20
    assert numbers.floating("-" + "9" * 50_000) == -1e20


@pytest.mark.parametrize("text", LENIENT)
def test_lenient_texts_are_no_numbers(text):
    assert (numbers.integer(text), numbers.decimal(text), numbers.floating(text)) == (
        None,
        None,
        None,
    )


def test_only_texts_and_json_integers_are_numbers():
    assert numbers.integer(True) is None
    assert numbers.decimal(1.5) is None  # a float never comes from a request
    assert numbers.integer(3) == 3
    assert numbers.loads(b'{"a": 1e3, "b": -0.5, "c": 7}') == {"a": "1e3", "b": "-0.5", "c": 7}
