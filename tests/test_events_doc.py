"""Every example in docs/events.md runs, as written, against the shipped config.

An example is a ```sh block holding one curl command, then a ```http block
with the status line, the headers that matter and, after a blank line, the
JSON body if it matters; then a ```json block with the event the collectors
receive (the keys shown must match), or none when no event is recorded.
"""

from __future__ import annotations

import json
import re
import shlex
import urllib.parse
from dataclasses import dataclass, field

import falcon.testing
import pytest

from tests import ROOT
from tests.apps import build_app
from tracker.config import load_file

DOC = ROOT / "docs" / "events.md"
#: The example signing key the doc uses; never a real one.
ENV = {
    "TRACKER_CLICK_KEYS": "k1:ZXhhbXBsZS1rZXktZG8tbm90LXVzZS0x",
    # Every example calls from 203.0.113.77, listed as an ad inserter for the SSAI one.
    "TRACKER_AD_INSERTERS": "203.0.113.77/32",
}
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


@dataclass
class Example:
    command: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: object = None
    event: dict | None = None


def examples() -> list[Example]:
    found: list[Example] = []
    for language, text in BLOCK.findall(DOC.read_text()):
        if language == "sh" and text.lstrip().startswith("curl "):
            found.append(Example(command=text.strip()))
        elif language == "http" and found:
            head, _, body = text.partition("\n\n")
            lines = head.strip().splitlines()
            found[-1].status = int(lines[0].split()[1])
            found[-1].headers = dict(line.split(": ", 1) for line in lines[1:])
            found[-1].body = json.loads(body) if body.strip() else None
        elif language == "json" and found:
            found[-1].event = json.loads(text)
    return found


def curl(command: str) -> dict:
    """Turn the curl subset used in the doc into request arguments."""
    args = shlex.split(command.replace("\\\n", " "))[1:]
    request: dict = {"method": None, "headers": {}, "body": None}
    it = iter(args)
    for arg in it:
        if arg in ("-s", "-i", "-si"):
            continue
        if arg == "-X":
            request["method"] = next(it)
        elif arg == "-H":
            name, value = next(it).split(": ", 1)
            request["headers"][name] = value
        elif arg in ("-d", "--data"):
            request["body"] = next(it)
        elif arg == "-A":
            request["headers"]["User-Agent"] = next(it)
        elif arg == "-b":
            request["headers"]["Cookie"] = next(it)
        else:
            request["url"] = arg
    request["method"] = request["method"] or ("POST" if request["body"] else "GET")
    request["headers"].setdefault("User-Agent", "curl/8.5.0")
    return request


EXAMPLES = examples()


def test_the_doc_has_examples_for_every_path():
    routes = {urllib.parse.urlsplit(curl(e.command)["url"]).path for e in EXAMPLES}
    prefixes = ("/imp", "/click", "/conv", "/vast/", "/win", "/bill", "/loss", "/events", "/t/")
    for prefix in prefixes:
        assert any(r.startswith(prefix) for r in routes), prefix


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.command[:70] for e in EXAMPLES])
def test_example(example: Example):
    tracker, memory = build_app(load_file(ROOT / "config" / "tracker.yaml", ENV))
    client = falcon.testing.TestClient(tracker.wsgi)
    request = curl(example.command)
    url = urllib.parse.urlsplit(request["url"])
    resp = client.simulate_request(
        request["method"],
        url.path,
        query_string=url.query,
        headers=request["headers"],
        body=request["body"],
        remote_addr="203.0.113.77",
    )
    assert resp.status_code == example.status, resp.text
    for name, value in example.headers.items():
        assert resp.headers.get(name) == value, name
    if example.body is not None:
        assert resp.json == example.body
    events = memory["kafka"].events
    if example.event is None:
        assert events == []
        return
    assert events, "no event was recorded"
    actual = events[-1].to_dict()
    for key, value in example.event.items():
        assert actual[key] == value, key
