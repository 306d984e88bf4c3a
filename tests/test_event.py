"""The event envelope."""

from __future__ import annotations

import json
import uuid

from tracker.event import SCHEMA_VERSION, Event, format_timestamp


def test_envelope_fields_and_json():
    event = Event(
        type="impression",
        path="impression",
        dimensions={"campaign_id": "c1", "name": "ünï"},
        metrics={"impressions": 1, "cost_micros": 2500},
        context={"ip": "203.0.113.0", "user_agent": "UA", "referer": None},
        received_at=1_764_000_000.1234,
    )
    data = json.loads(event.to_json())
    assert data == {
        "schema_version": SCHEMA_VERSION,
        "id": event.id,
        "type": "impression",
        "path": "impression",
        "received_at": "2025-11-24T16:00:00.123Z",
        "dimensions": {"campaign_id": "c1", "name": "ünï"},
        "metrics": {"impressions": 1, "cost_micros": 2500},
        "context": {"ip": "203.0.113.0", "user_agent": "UA", "referer": None},
    }
    assert "ünï".encode() in event.to_json()  # UTF-8, not \\u escapes


def test_ids_are_unique_uuids():
    ids = {Event(type="t", path="p").id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_round_trip_keeps_the_id():
    event = Event(type="t", path="p", dimensions={"a": "b"}, metrics={"m": 2})
    again = Event.from_dict(event.to_dict())
    assert again.to_dict() == event.to_dict()


def test_timestamp_format():
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
