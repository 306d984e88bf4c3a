"""`tracker replay`: spool segments and log files back to the collectors, same ids."""

from __future__ import annotations

import json

import pytest

from tracker.cli import main
from tracker.event import Event
from tracker.spool import Spool

CONFIG = """
collectors:
  out: {{type: log, path: "{out}"}}
  other: {{type: log, path: "{other}", deny_fields: [context, dimensions.secret]}}
paths:
  hit: {{route: /hit, event_type: hit, collectors: [out]}}
"""


@pytest.fixture
def setup(tmp_path):
    out, other = tmp_path / "out.jsonl", tmp_path / "other.jsonl"
    config = tmp_path / "tracker.yaml"
    config.write_text(CONFIG.format(out=out, other=other))
    events = [
        Event(type="hit", path="hit", dimensions={"n": i}, context={"ip": "192.0.2.1"})
        for i in range(5)
    ]
    return config, out, other, events


def ids(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_replays_a_spool_segment_to_the_paths_collectors(setup, tmp_path, capsys):
    config, out, _, events = setup
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.open()
    for event in events:
        spool.append(event.to_json())
    spool.close()
    (segment,) = (tmp_path / "spool").glob("*.seg")
    assert main(["replay", "--config", str(config), str(segment)]) == 0
    assert ids(out) == [e.id for e in events]
    assert capsys.readouterr().out == "out: 5 events sent\n"
    # Again: the same ids, so a consumer de-duplicating by id sees nothing new.
    assert main(["replay", "--config", str(config), str(segment)]) == 0
    assert ids(out) == [e.id for e in events] * 2


def test_replays_a_log_file_to_a_named_collector(setup, tmp_path):
    config, _, other, events = setup
    source = tmp_path / "events-1.jsonl"
    source.write_text("".join(e.to_json().decode() + "\n" for e in events))
    assert main(["replay", "--config", str(config), "--collector", "other", str(source)]) == 0
    replayed = [json.loads(line) for line in other.read_text().splitlines()]
    assert [r["id"] for r in replayed] == [e.id for e in events]
    assert [r["dimensions"] for r in replayed] == [e.dimensions for e in events]


def test_a_segment_in_use_is_not_replayed(setup, tmp_path, capsys):
    config, out, _, events = setup
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.open()
    spool.append(events[0].to_json())  # the active segment stays locked by its writer
    (segment,) = (tmp_path / "spool").glob("*.seg")
    assert main(["replay", "--config", str(config), str(segment)]) == 1
    assert "in use by a running tracker; not replayed" in capsys.readouterr().err
    assert not out.exists() or out.read_text() == ""


def test_unknown_collector_is_refused(setup, capsys):
    config, *_ = setup
    assert main(["replay", "--config", str(config), "--collector", "s3", "x"]) == 2
    assert capsys.readouterr().err == "no collector named s3 in the config\n"


def test_replay_applies_the_collectors_field_filter(setup, tmp_path):
    config, _, other, _ = setup
    source = tmp_path / "events-2.jsonl"
    source.write_text(
        Event(
            type="hit", path="hit", dimensions={"n": 1, "secret": "x"}, context={"ip": "192.0.2.1"}
        )
        .to_json()
        .decode()
        + "\n"
    )
    assert main(["replay", "--config", str(config), "--collector", "other", str(source)]) == 0
    (line,) = other.read_text().splitlines()
    assert json.loads(line)["dimensions"] == {"n": 1}
    assert json.loads(line)["context"] == {}
