"""The fast way through marshmallow gives marshmallow's own answers.

Every path of the shipped config is loaded both ways, through
:class:`tracker.intake.fields.checks.Loader` and through a schema of stock marshmallow
fields with the same validators, on random raw values: the same values for a
valid request, the same messages for an invalid one.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

from tests import ROOT
from tracker.config import load_file
from tracker.intake.fields import schema as tracker_fields
from tracker.intake.fields.checks import Checks, Loader
from tracker.intake.fields.schema import build_schema

CONFIG = load_file(ROOT / "config" / "tracker.yaml")
PATHS = [p for p in CONFIG.paths.values() if p.batch is None]


def _stock(tracker_field: type, stock: type) -> type:
    """marshmallow's ``stock`` field reading values as ``tracker_field`` does (numbers, strings)."""
    return type(
        f"Stock{stock.__name__}",
        (stock,),
        {
            "_deserialize": tracker_field._deserialize,
            "default_error_messages": tracker_field.default_error_messages,
        },
    )


#: Stock marshmallow validation for what the tracker subclasses to validate faster.
_STOCK = {
    "string": lambda spec, **common: _stock(tracker_fields.String, fields.String)(**common),
    "integer": lambda spec, **common: _stock(tracker_fields.Integer, fields.Integer)(**common),
    "boolean": lambda spec, **common: fields.Boolean(**common),
}


def reference_schema(path) -> Schema:
    """The path's schema as stock marshmallow validates it: each validator, then ``And``."""
    declared = {}
    for spec in path.fields:
        validators = tracker_fields._validators(spec)
        stock = list(validators[0].validators.validators) if validators else []
        common = {"required": spec.required, "validate": stock}
        if not spec.required and spec.default is not None:
            common["load_default"] = spec.default
        make = _STOCK.get(spec.type, tracker_fields._CONSTRUCTORS[spec.type])
        declared[spec.name] = make(spec, **common)
    return Schema.from_dict(declared)()


def outcome(load, raw):
    try:
        return "ok", load(raw)
    except ValidationError as ex:
        return "error", ex.normalized_messages()


VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "c-1",
            "1",
            "0",
            "2",
            "-1",
            "1.25",
            "USD",
            "usd",
            "not a campaign!",
            "${AUCTION_PRICE}",
            "%24%7BAUCTION_ID%7D",
            "a" * 129,
            "a" * 300,
            "midpoint",
            "1YNN",
            "true",
            "x:y.z",
        ]
    ),
    st.text(max_size=40),
    st.integers(-5, 200_000).map(str),
)


@pytest.mark.parametrize("fail_fast", [False, True], ids=["every error", "fail fast"])
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_loader_answers_as_marshmallow(path, fail_fast, data):
    """Same values and messages; fail fast: only marshmallow's first error, in field order."""
    names = [spec.name for spec in path.fields]
    raw = data.draw(st.dictionaries(st.sampled_from(names), VALUES, max_size=len(names)))
    fast = outcome(Loader(build_schema(path), fail_fast).load, raw)
    expected = outcome(reference_schema(path).load, raw)
    if fail_fast and expected[0] == "error":
        expected = ("error", dict([next(iter(expected[1].items()))]))
    assert fast == expected


def test_loader_sends_an_undeclared_key_to_the_schema():
    path = CONFIG.paths["impression"]
    with pytest.raises(ValidationError) as ex:
        Loader(build_schema(path)).load({"campaign_id": "c-1", "nope": "1"})
    assert ex.value.normalized_messages() == {"nope": ["Unknown field."]}


def test_checks_keep_every_message_of_a_value_that_breaks_several_rules():
    spec = next(s for s in CONFIG.paths["impression"].fields if s.name == "campaign_id")
    (checks,) = tracker_fields._validators(spec)
    assert isinstance(checks, Checks)
    with pytest.raises(ValidationError) as ex:
        checks("${X}" + "a" * 200)
    assert len(ex.value.messages) == 2
    assert ex.value.messages[0].startswith("Contains the literal macro ${X}")
