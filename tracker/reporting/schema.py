"""The reporting tables, and one Kafka message turned into one row.

One wide events table: typed columns for what every report reads, the rest of
the dimensions and metrics in maps, so a path added in YAML needs no migration.
The sort key is ``(type, id)``, and there is no partition key: both hold only
values identical in every copy of an event id (the id is derived from the event
type and the auction ids, docs/event.md), so ReplacingMergeTree can merge every
copy of an id into one row. Reports still count distinct ids, never rows: a
merge happens some time after the insert, or never.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

EVENTS = "tracker_events"
DEAD_LETTERS = "tracker_dead_letters"

#: Columns filled from the dimensions of the same name (absent: the empty string).
DIMENSION_COLUMNS = (
    "campaign_id",
    "line_item_id",
    "creative_id",
    "publisher_id",
    "site_domain",
    "app_bundle",
    "currency",
    "vast_event",
)
#: Columns filled from the integer metrics of the same name (absent: 0).
METRIC_COLUMNS = ("spend_micros", "value_micros", "clearing_price_micros")

#: The merge keeps the row with the highest version: the copy received first.
VERSION_BASE = 10**13

_TYPED = ", ".join(
    f"{c} {'LowCardinality(String)' if c in ('currency', 'vast_event') else 'String'}"
    f" DEFAULT dimensions['{c}']"
    for c in DIMENSION_COLUMNS
)
# The loader inserts the envelope as Kafka carries it (plus topic, partition and
# offset): ClickHouse parses it and fills the typed columns from the maps, which
# is what makes a core load 50,000 events/s. A row without id or type breaks the
# constraint; the batch is then checked in Python, message by message.
EVENTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {EVENTS} (
    id String,
    type LowCardinality(String),
    path LowCardinality(String),
    received_at DateTime64(3, 'UTC'),
    dimensions Map(String, String),
    metrics Map(String, Float64),
    {_TYPED},
    is_bot UInt8 DEFAULT dimensions['is_bot'] = 'true',
    billable UInt8 DEFAULT dimensions['billable'] != 'false',
    {", ".join(f"{c} Int64 DEFAULT toInt64(metrics['{c}'])" for c in METRIC_COLUMNS)},
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    version UInt64 DEFAULT {VERSION_BASE} - toUnixTimestamp64Milli(received_at),
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3),
    CONSTRAINT has_id CHECK id != '' AND type != ''
) ENGINE = ReplacingMergeTree(version)
ORDER BY (type, id)
SETTINGS non_replicated_deduplication_window = 10000
"""

#: How the envelope's JSON is read: numbers and booleans of the dimensions as text,
#: the envelope's other keys (schema_version, context) ignored, RFC 3339 times.
INSERT_SETTINGS = {
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_strings": 1,
    "input_format_skip_unknown_fields": 1,
    "date_time_input_format": "best_effort",
}

DEAD_LETTERS_DDL = f"""
CREATE TABLE IF NOT EXISTS {DEAD_LETTERS} (
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    reason String,
    message String,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
"""

DDL = (EVENTS_DDL, DEAD_LETTERS_DDL)

#: The envelope's received_at: RFC 3339 UTC with milliseconds (tracker.event.format_timestamp).
_RECEIVED = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z$")
_DAYS_BEFORE_MONTH = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


class BadMessage(ValueError):
    """A Kafka message that is not a tracker event; its text is the dead letter's reason."""


def epoch_millis(text: Any) -> int:
    """Return the milliseconds since the epoch of an envelope's ``received_at``.

    Raises:
        BadMessage: Not the envelope's timestamp format, or a date ClickHouse's
            DateTime64 cannot hold (before 1970, after 2261).
    """
    match = _RECEIVED.match(text) if isinstance(text, str) else None
    if match is None:
        raise BadMessage(f"received_at is not an RFC 3339 UTC time: {text!r:.64}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (1970 <= year <= 2261 and 1 <= month <= 12 and 1 <= day <= 31):
        raise BadMessage(f"received_at out of range: {text!r:.64}")
    if hour > 23 or minute > 59 or second > 60:
        raise BadMessage(f"received_at out of range: {text!r:.64}")
    leap = month > 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    years = year - 1970
    days = years * 365 + (year - 1969) // 4 - (year - 1901) // 100 + (year - 1601) // 400
    days += _DAYS_BEFORE_MONTH[month] + leap + day - 1
    fraction = (match.group(7) or "0").ljust(3, "0")[:3]
    return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + int(fraction)


def row(value: bytes | None, topic: str, partition: int, offset: int) -> dict[str, Any]:
    """Turn one message of an event topic into an events-table row.

    Raises:
        BadMessage: The message is not a tracker event envelope.
    """
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError as ex:
        raise BadMessage(f"not JSON: {ex}") from None
    if not isinstance(event, dict):
        raise BadMessage("not a JSON object")
    ident, kind, path = event.get("id"), event.get("type"), event.get("path")
    if not (isinstance(ident, str) and ident and isinstance(kind, str) and kind):
        raise BadMessage("no string id and type")
    dims, mets = event.get("dimensions", {}), event.get("metrics", {})
    if not (isinstance(dims, dict) and isinstance(mets, dict)):
        raise BadMessage("dimensions and metrics must be objects")
    received = event.get("received_at")
    epoch_millis(received)
    return {
        "id": ident,
        "type": kind,
        "path": path if isinstance(path, str) else "",
        "received_at": received,
        "dimensions": {
            k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in dims.items()
        },
        "metrics": _metrics(mets),
        "topic": topic,
        "partition": partition,
        "offset": offset,
    }


def spliced(value: bytes, head: bytes, offset: int) -> bytes | None:
    """Return the message with its topic, partition and offset spliced in; None if no object.

    ``head`` is ``{"topic":"...","partition":N,`` (from :func:`splice_head`).
    """
    if value[:1] != b"{" or value[1:2] == b"}":
        return None
    return b'%s"offset":%d,%s' % (head, offset, value[1:])


def splice_head(topic: str, partition: int) -> bytes:
    """The start of a spliced message of ``topic`` and ``partition``."""
    return b'{"topic":%s,"partition":%d,' % (orjson.dumps(topic), partition)


def _metrics(mets: dict[str, Any]) -> dict[str, int | float]:
    """Check the metrics: numbers, the typed ones within 64 bits."""
    for name, metric in mets.items():
        if isinstance(metric, bool) or not isinstance(metric, int | float):
            raise BadMessage(f"metric {name!r:.64} is not a number")
        if name in METRIC_COLUMNS and not -(2**63) <= metric < 2**63:
            raise BadMessage(f"metric {name!r:.64} does not fit 64 bits")
    return mets
