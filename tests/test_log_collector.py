"""The log collector: JSON lines, one file per worker, size rotation."""

from __future__ import annotations

import json
import os

from collectors.log import LogCollector, LogOptions
from tracker.event import Event


def test_writes_one_json_line_per_event_and_rotates(tmp_path):
    options = LogOptions().load(
        {"path": str(tmp_path / "events-{pid}.jsonl"), "max_bytes": 2048, "backup_count": 2}
    )
    collector = LogCollector("log", options)
    collector.open()
    events = [Event(type="t", path="p", dimensions={"n": i, "pad": "x" * 100}) for i in range(60)]
    for event in events:
        collector.collect(event)
    assert collector.close(1.0) == 0
    current = tmp_path / f"events-{os.getpid()}.jsonl"
    files = sorted(tmp_path.iterdir())
    assert files == [
        current,
        current.with_name(current.name + ".1"),
        current.with_name(current.name + ".2"),
    ]
    assert all(f.stat().st_size <= 2048 for f in files)
    lines = [json.loads(line) for f in reversed(files[1:]) for line in f.read_text().splitlines()]
    lines += [json.loads(line) for line in current.read_text().splitlines()]
    # Rotation drops the oldest files beyond backup_count; what is kept is in order.
    kept_ids = [line["id"] for line in lines]
    assert kept_ids == [e.id for e in events][-len(kept_ids) :]


def test_write_failure_is_counted_not_raised(tmp_path, caplog):
    options = LogOptions().load({"path": str(tmp_path / "e.jsonl")})
    collector = LogCollector("log", options)
    collector.open()
    collector.handler.stream.close()  # the disk went away
    collector.collect(Event(type="t", path="p"))
    assert "could not write event" in caplog.text
