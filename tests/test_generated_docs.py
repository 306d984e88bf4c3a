"""The generated documents: current, complete, valid, and served."""

from __future__ import annotations

import json

import falcon.testing
import yaml
from openapi_spec_validator import validate

from tests import ROOT
from tests.apps import build_app
from tracker.config import load_file
from tracker.config.reference import render, undocumented
from tracker.http.openapi.document import OpenApi
from tracker.process.docs import generated

SHIPPED = ROOT / "config" / "tracker.yaml"


def test_committed_documents_are_what_the_code_generates():
    for name, text in generated(str(SHIPPED)).items():
        committed = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert committed == text, f"docs/{name} is stale: run `make docs` and commit it"


def test_every_config_key_has_a_description():
    assert undocumented() == []


def test_reference_rows_carry_type_default_rules_and_description():
    text = render()
    assert (
        "| `max_url_length` | integer | `4096` | at least 64 | Longest path plus query string;"
        " longer is 414. |"
    ) in text
    assert "| `class` | string | `fast` | one of `fast`, `durable` |" in text
    assert "### `type: kafka`" in text
    assert "#### `collectors.<name>.spool`" in text
    assert "| `action` | string | `flag` | one of `flag`, `drop` |" in text


def document() -> dict:
    return yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))


def test_openapi_document_is_valid_openapi_3_1():
    spec = document()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_parameters_carry_what_the_tracker_enforces():
    imp = document()["paths"]["/imp"]["get"]
    params = {p["name"]: p for p in imp["parameters"]}
    assert params["cid"]["required"] is True
    assert params["cid"]["schema"]["pattern"] == "^[A-Za-z0-9._:-]{1,128}$"
    assert params["gdpr"]["schema"] == {
        "type": "integer",
        "enum": [0, 1],
        "minimum": -(2**53 - 1),
        "maximum": 2**53 - 1,
        "description": "`gdpr` (integer)",
    }
    bill = {p["name"]: p for p in document()["paths"]["/bill"]["get"]["parameters"]}
    assert (bill["ts"]["schema"]["minimum"], bill["ts"]["schema"]["maximum"]) == (0, 9999999999999)
    vast = {p["name"]: p for p in document()["paths"]["/vast/{event}"]["get"]["parameters"]}
    assert vast["ph"]["schema"]["description"] == (
        "`playhead` (string): [ADPLAYHEAD], HH:MM:SS or HH:MM:SS.mmm, at most 99:59:59.999;"
        " becomes playhead_ms."
    )
    assert sorted(imp["responses"]) == ["200", "400", "413", "414", "431"]
    video = document()["paths"]["/vast/{event}"]["get"]
    (event,) = [p for p in video["parameters"] if p["in"] == "path"]
    assert event["required"] is True


def test_responses_follow_each_path_s_answer():
    paths = document()["paths"]
    assert "302" in paths["/click"]["get"]["responses"]
    assert "204" in paths["/win"]["post"]["responses"]
    assert "503" in paths["/bill"]["get"]["responses"]
    assert "503" not in paths["/win"]["get"]["responses"]
    conv = paths["/conv"]["post"]
    assert set(conv["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert (
        paths["/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]["maxItems"]
        == 100
    )


def test_openapi_json_serves_the_running_config():
    config = load_file(SHIPPED, {})
    tracker, _ = build_app(config)
    resp = falcon.testing.TestClient(tracker.wsgi).simulate_get("/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json == json.loads(json.dumps(OpenApi(config).build()))
