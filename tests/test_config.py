"""Config validation: every problem reported at once, with its dotted path."""

from __future__ import annotations

import pytest

from tests import ROOT
from tests.apps import fixture_config
from tracker.config import ConfigError, load_text


def errors_of(name: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        fixture_config(name, environ)
    return info.value.errors


def test_shipped_config_is_valid():
    config = fixture_config("minimal")
    assert list(config.paths) == ["hit"]
    from tracker.config import load_file

    shipped = load_file(ROOT / "config" / "tracker.yaml", {})
    assert {p.route for p in shipped.paths.values()} == {
        "/imp",
        "/click",
        "/conv",
        "/vast/{event}",
        "/win",
        "/bill",
        "/loss",
        "/events",
        "/t/page",
        "/t/click",
        "/t/go",
        "/t/event",
        "/t/video/{event}",
    }


def test_unknown_keys_are_all_reported_with_their_path():
    assert errors_of("unknown_keys") == [
        "colectors: Unknown field. (found: {})",
        "collectors.mem.color: Unknown field. (found: 'red')",
        "paths.hit.respnse: Unknown field. (found: {'type': 'pixel'})",
        "paths.hit.fields.cid.sauce: Unknown field. (found: 'query')",
    ]


def test_bad_types_and_values_are_all_reported():
    assert errors_of("bad_types") == [
        "server.max_body_bytes: Not a valid integer. (found: 'lots')",
        "paths.hit.route: Must start with /. (found: 'hit')",
        "paths.hit.methods.1: Must be one of: GET, POST. (found: 'DELETE')",
        "paths.hit.event_type: Must match ^[a-z][a-z0-9_.-]*$. (found: 'Hit Event')",
        "paths.hit.response.type: Must be one of: pixel, no_content, json, redirect."
        " (found: 'html')",
        "paths.hit.fields.cid.type: Must be one of: string, integer, float, boolean, micros,"
        " auction_price, loss_reason. (found: 'strng')",
        "paths.hit.fields.n.min: Not a valid number. (found: 'low')",
        "paths.hit.fields.p.pattern: Not a valid regular expression: unterminated character"
        " set at position 1. (found: '([a-z')",
        "paths.hit.fields.s.source: Must be among: query, body, header, cookie, path."
        " (found: 'smoke')",
        "paths.hit.fields.r.default: A required field cannot have a default. (found: 'x')",
    ]


def test_dangling_references_are_all_reported():
    assert errors_of("dangling") == [
        "collectors.gone.type: no plugin 'nosuchplugin' in entry-point group"
        " 'tracker.collectors' (installed: banker, kafka, log, memory)",
        "paths.hit.dimensions.creative: unknown field 'crid'",
        "paths.hit.metrics.cost: unknown field 'price'",
        "paths.hit.metrics.label: 'label' is a string, a metric needs one of"
        " auction_price.cpm_micros, auction_price.micros, auction_price.units, float, integer,"
        " loss_reason.code, micros",
        "paths.hit.preprocessors.0: no preprocessor named 'anonymise'",
        "paths.hit.collectors.1: no collector named 'kafka'",
        "paths.hit.route: route parameter {slot} has no field with source 'path'",
        "paths.hit.fields.where.source: route '/hit/{slot}' has no parameter {place}",
        "paths.again.route: route '/hit/{slot}' is already used by path 'hit'",
    ]


def test_environment_references_are_expanded(tmp_path):
    config = fixture_config("env", {"TRACKER_TEST_DIR": str(tmp_path)})
    assert config.collectors["log"].options.path == f"{tmp_path}/events.jsonl"
    assert config.paths["hit"].route == "/hit"
    config = fixture_config("env", {"TRACKER_TEST_DIR": "x", "TRACKER_TEST_ROUTE": "/other"})
    assert config.paths["hit"].route == "/other"


def test_missing_environment_variable_is_an_error():
    assert errors_of("env") == [
        "collectors.log.path: environment variable TRACKER_TEST_DIR is not set"
        " (found: '${TRACKER_TEST_DIR}/events.jsonl')"
    ]


def test_required_sections():
    with pytest.raises(ConfigError) as info:
        load_text("server: {}\n", {})
    assert info.value.errors == [
        "collectors: Missing data for required field.",
        "paths: Missing data for required field.",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "<root>: must be a mapping (found: [1, 2])"),
        ("a: [", "not valid YAML: "),
    ],
)
def test_not_a_config(text, message):
    with pytest.raises(ConfigError) as info:
        load_text(text, {})
    assert info.value.errors[0].startswith(message)


def test_plugin_options_are_validated_by_the_plugin():
    text = """
collectors:
  k: {type: kafka, topic: t, key: campaign, producer: {bootstrap.servers: x}}
  l: {type: log, max_bytes: 10}
paths:
  p: {route: /p, event_type: p, collectors: [k, l]}
"""
    with pytest.raises(ConfigError) as info:
        load_text(text, {})
    assert info.value.errors == [
        "collectors.k.bootstrap_servers: Missing data for required field.",
        "collectors.k.key: Must be id, none, dimensions.<name> or context.<name>."
        " (found: 'campaign')",
        "collectors.k.spool: Missing data for required field.",
        "collectors.k.producer: Set bootstrap_servers, not producer.bootstrap.servers."
        " (found: {'bootstrap.servers': 'x'})",
        "collectors.l.path: Missing data for required field.",
        "collectors.l.max_bytes: Must be greater than or equal to 1024. (found: 10)",
    ]


def test_frozen_path_config():
    path = fixture_config("every_source").paths["multi"]
    assert path.methods == ("GET", "POST")
    assert path.dimensions[0] == ("kind", "kind")
    assert dict(path.metrics) == {"hits": 1, "price_micros": "price", "ratio": "ratio", "n": "n"}
    fields = {f.name: f for f in path.fields}
    assert fields["h"].key == "X-Thing" and fields["h"].sources == ("header",)
    assert fields["either"].sources == ("query", "body")
    assert fields["q"].max_length == 1024  # server.max_field_length applies by default
    with pytest.raises(AttributeError):
        path.route = "/x"  # type: ignore[misc]


NUMERIC_BOUNDS = """
collectors: {mem: {type: memory}}
paths:
  hit:
    route: /hit
    event_type: hit
    collectors: [mem]
    fields:
      n: {type: integer, max: 1e20}
      f: {type: float, min: -1e300}
      m: {type: micros, max: 1e12}
      loss: {type: loss_reason, min: -1}
      plain: {type: integer}
      money: {type: micros}
"""


def test_numeric_bounds_default_to_their_type_s_and_cannot_be_wider():
    with pytest.raises(ConfigError) as info:
        load_text(NUMERIC_BOUNDS, {})
    assert info.value.errors == [
        "paths.hit.fields.n.max: Must be from -9007199254740991 to 9007199254740991 for type"
        " integer. (found: '1e20')",
        "paths.hit.fields.f.min: Must be from -9007199254740991 to 9007199254740991 for type"
        " float. (found: '-1e300')",
        "paths.hit.fields.m.max: Must be from -9000000000 to 9000000000 for type micros."
        " (found: '1e12')",
        "paths.hit.fields.loss.min: Must be from 0 to 9007199254740991 for type loss_reason."
        " (found: -1)",
    ]
    fields = (
        load_text(
            NUMERIC_BOUNDS.split("      n:")[0] + "      plain: {type: integer}\n"
            "      money: {type: micros}\n",
            {},
        )
        .paths["hit"]
        .fields
    )
    assert [(f.min, f.max) for f in fields] == [
        (-(2**53 - 1), 2**53 - 1),
        (-9_000_000_000, 9_000_000_000),
    ]
