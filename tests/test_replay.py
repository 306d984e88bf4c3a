"""`tracker replay`: spool segments and log files back to the collectors, same ids."""

from __future__ import annotations

import json

import pytest

from tracker.event import Event
from tracker.process.cli import main
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


def spool_segment(directory, events):
    spool = Spool(directory, 1 << 30)
    spool.open()
    for event in events:
        spool.append(event.to_json())
    spool.close()
    return sorted(directory.glob("*.seg"))[-1]


def test_replays_a_spool_segment_to_the_paths_collectors_then_deletes_it(setup, tmp_path, capsys):
    config, out, _, events = setup
    segment = spool_segment(tmp_path / "spool", events)
    assert main(["replay", "--config", str(config), str(segment)]) == 0
    assert ids(out) == [e.id for e in events]
    assert capsys.readouterr().out == "out: 5 events sent\nreplayed segments deleted: 1\n"
    assert not segment.exists()
    # Before: the segment stayed, and a second replay sent every event again.
    assert main(["replay", "--config", str(config), str(segment)]) == 1
    assert "no such file (a segment deleted by an earlier replay?)" in capsys.readouterr().err
    assert ids(out) == [e.id for e in events]


def test_a_segment_with_events_no_collector_took_is_kept(setup, tmp_path, capsys):
    config, _, _, events = setup
    stray = Event(type="hit", path="gone", dimensions={}, context={})
    segment = spool_segment(tmp_path / "spool", [*events[:2], stray])
    assert main(["replay", "--config", str(config), str(segment)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "out: 2 events sent\n1 events skipped: their path is not in the config\n"
    assert captured.err == f"segments kept for another replay: 1 ({segment})\n"
    assert segment.exists()


def test_a_failed_replay_deletes_nothing(setup, tmp_path, capsys):
    config, _, _, events = setup
    first = spool_segment(tmp_path / "spool", events[:2])
    writer = Spool(tmp_path / "busy", 1 << 20)
    writer.open()
    writer.append(events[2].to_json())  # the active segment stays locked by its writer
    (busy,) = (tmp_path / "busy").glob("*.seg")
    assert main(["replay", "--config", str(config), str(first), str(busy)]) == 1
    assert "in use by a running tracker; not replayed" in capsys.readouterr().err
    assert first.exists()
    writer.close()


def test_a_segment_the_broker_did_not_take_is_kept(tmp_path, capsys):
    # No broker: the kafka collector spools the record instead of delivering it,
    # so the quarantined segment stays for a replay once the broker answers.
    spool_dir = tmp_path / "kafka-spool"
    config = tmp_path / "tracker.yaml"
    config.write_text(
        "collectors:\n"
        "  kafka:\n"
        "    type: kafka\n"
        "    bootstrap_servers: 127.0.0.1:9\n"
        "    topic: t\n"
        f"    spool: {{directory: '{spool_dir}'}}\n"
        "paths:\n"
        "  hit: {route: /hit, event_type: hit, collectors: [kafka]}\n"
    )
    event = Event(type="hit", path="hit", dimensions={}, context={})
    segment = spool_segment(tmp_path / "quarantine" / "too_large", [event])
    args = ["replay", "--config", str(config), "--timeout", "2", str(segment)]
    assert main(args) == 1
    assert capsys.readouterr().err.endswith(f"segments kept for another replay: 1 ({segment})\n")
    assert segment.exists()
    assert len(list(spool_dir.glob("*.seg"))) == 1


def test_replays_a_log_file_to_a_named_collector(setup, tmp_path):
    config, _, other, events = setup
    source = tmp_path / "events-1.jsonl"
    source.write_text("".join(e.to_json().decode() + "\n" for e in events))
    assert main(["replay", "--config", str(config), "--collector", "other", str(source)]) == 0
    replayed = [json.loads(line) for line in other.read_text().splitlines()]
    assert [r["id"] for r in replayed] == [e.id for e in events]
    assert [r["dimensions"] for r in replayed] == [e.dimensions for e in events]


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
