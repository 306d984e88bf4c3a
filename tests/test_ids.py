"""Event ids and timestamps: the text the standard library would write, made cheaper."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tracker.event import format_timestamp, name_id, new_id
from tracker.intake.fields.mapping import EVENT_ID_NAMESPACE


def test_random_ids_are_canonical_version_4_uuids_and_distinct():
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:2_000]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


@given(st.text())
def test_derived_ids_are_uuid5(name):
    assert name_id(EVENT_ID_NAMESPACE, name) == str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def _stdlib(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


EDGES = [0.0, 0.0005, 0.9995, 0.9999995, 1.0000005, -0.5, -1.9999996, 1796164184.9999996]


@given(st.one_of(st.sampled_from(EDGES), st.floats(-62135596800.0, 253402300799.0)))
def test_timestamps_are_the_text_datetime_writes(epoch):
    assert format_timestamp(epoch) == _stdlib(epoch)


def test_timestamps_in_one_second_share_it_and_the_next_one_moves_on():
    assert format_timestamp(1796164184.001) == "2026-12-01T22:29:44.001Z"
    assert format_timestamp(1796164184.999) == "2026-12-01T22:29:44.999Z"
    assert format_timestamp(1796164185.0) == "2026-12-01T22:29:45.000Z"
