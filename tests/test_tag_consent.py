"""The tag's own consent decision, run in Node with a stubbed page (no browser needed).

The headless-Chromium test (tests/integration/test_browser.py) drives the whole
tag; this one checks, in a second, when the tag stores and sends a visitor id.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse

import pytest

from tests import ROOT

TAG = ROOT / "tracker" / "http" / "static" / "tracker.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs node")

PAGE = """
const sent = [], store = {};
globalThis.window = globalThis;
globalThis.navigator = {
  globalPrivacyControl: %(gpc)s,
  sendBeacon: (url, body) => { sent.push([url, body.toString()]); return true; },
};
globalThis.localStorage = {
  getItem: (k) => (k in store ? store[k] : null),
  setItem: (k, v) => { store[k] = v; },
  removeItem: (k) => { delete store[k]; },
};
globalThis.location = {href: "https://shop.example/p"};
globalThis.document = {
  currentScript: {src: "https://t.example/tracker.js", dataset: %(dataset)s},
  readyState: "complete", title: "T", referrer: "",
  addEventListener() {}, querySelectorAll: () => [],
};
const cmp = %(cmp)s;
if (cmp) globalThis.__tcfapi = (command, version, callback) => {
  if (command === "addEventListener") callback({eventStatus: "tcloaded", ...cmp}, true);
};
%(tag)s
setTimeout(() => console.log(JSON.stringify({sent, store})), 20);
"""


def run_tag(cmp: dict | None, gpc: bool = False, identify: str = "consent") -> dict:
    script = PAGE % {
        "gpc": json.dumps(gpc),
        "dataset": json.dumps({"identify": identify, "consentTimeout": "10"}),
        "cmp": json.dumps(cmp),
        "tag": TAG.read_text(),
    }
    out = subprocess.run([NODE, "-e", script], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    ((url, body),) = result["sent"]
    assert url == "https://t.example/t/page"
    return {"params": dict(urllib.parse.parse_qsl(body)), "stored": result["store"]}


def tcf(purpose_one: bool, treatment: bool = False) -> dict:
    return {
        "gdprApplies": True,
        "tcString": "CQ",
        "purpose": {"consents": {"1": purpose_one}},
        "purposeOneTreatment": treatment,
    }


def test_purpose_one_consent_gives_a_visitor_id():
    page = run_tag(tcf(True))
    assert page["params"]["vid"] == page["stored"]["tracker_vid"]
    assert page["params"]["gdpr"] == "1"


@pytest.mark.parametrize(
    ("cmp", "gpc", "identify"),
    [
        (tcf(False), False, "consent"),
        # Purpose 1 not disclosed: its consent bit says nothing.
        (tcf(True, treatment=True), False, "consent"),
        (tcf(True), True, "consent"),
        ({"gdprApplies": False, "tcString": ""}, True, "consent"),
        (None, True, "always"),
    ],
)
def test_no_visitor_id_without_consent_or_with_global_privacy_control(cmp, gpc, identify):
    page = run_tag(cmp, gpc, identify)
    assert "vid" not in page["params"]
    assert page["stored"] == {}
