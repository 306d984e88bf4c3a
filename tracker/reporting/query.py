"""The campaign report: one SQL query that counts distinct event ids.

Every event id is first reduced to its first copy (``GROUP BY type, id``, the
values of the copy received first), then the copies' metrics are counted per
``--by`` key over the ids whose first copy falls in ``[from, to)``. So an id
delivered twice, replayed, or loaded twice after a loader restart counts once,
on the day it was first received, whatever the state of the table's merges.
``docs/reporting.md`` lists the query behind each metric.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import schema

#: ``--by`` keys: the name in the output, and the expression over the first copies.
DIMENSIONS = {
    "campaign": "campaign_id",
    "line_item": "line_item_id",
    "creative": "creative_id",
    "publisher": "publisher_id",
    "site": "site_domain",
    "app": "app_bundle",
    # Enrichment dimensions (docs/event.md): read from the first copy's map, so no migration.
    "country": "country",
    "device_type": "device_type",
    "day": "toString(toDate(t))",
    "hour": "formatDateTime(toStartOfHour(t), '%Y-%m-%dT%H:00:00Z')",
}

#: The metrics counted in SQL, in output order (the ratios are computed from them).
COUNTED = {
    "impressions": "countIf(type = 'impression' AND NOT is_bot)",
    "clicks": "countIf(type = 'click' AND NOT is_bot)",
    "bot_impressions": "countIf(type = 'impression' AND is_bot)",
    "conversions": "countIf(type = 'conversion' AND NOT is_bot)",
    "conversion_value_micros": "sumIf(value_micros, type = 'conversion' AND NOT is_bot)",
    "video_starts": "countIf(type = 'video' AND vast_event = 'start' AND NOT is_bot)",
    "video_completes": "countIf(type = 'video' AND vast_event = 'complete' AND NOT is_bot)",
    "wins": "countIf(type = 'win')",
    "losses": "countIf(type = 'loss')",
    "spend_micros": "sumIf(spend_micros, spendable AND money = campaign_currency)",
}
#: Every metric of the report, in output order.
METRICS = (
    "impressions",
    "clicks",
    "bot_impressions",
    "ctr",
    "conversions",
    "conversion_value_micros",
    "video_starts",
    "video_completes",
    "completion_rate",
    "wins",
    "losses",
    "win_rate",
    "spend_micros",
    "ecpm_micros",
)

#: The banker's currency for a notice without one (its ``default_currency``, USD).
DEFAULT_CURRENCY = "USD"
_MONEY = f"if(currency = '', '{DEFAULT_CURRENCY}', currency)"
#: A billing notice the banker spends: billable (not AUDIT), not a bot, with a campaign.
SPENDABLE = "type = 'billing' AND billable AND NOT is_bot AND campaign_id != ''"
_COPY = "(received_at, topic, partition, offset)"
#: ``--by`` keys kept only in the dimensions map (absent: the empty string).
MAP_KEYS = ("country", "device_type")
_FIRST = ", ".join(
    [
        *(
            f"argMin({c}, {_COPY}) AS {c}"
            for c in (*schema.DIMENSION_COLUMNS, "is_bot", "billable", *schema.METRIC_COLUMNS)
        ),
        *(f"argMin(dimensions['{k}'], {_COPY}) AS {k}" for k in MAP_KEYS),
    ]
)
_TIME = re.compile(r"^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d)?)?Z?$")


class ReportError(ValueError):
    """A report option that cannot be used; the message says why."""


@dataclass(frozen=True)
class ReportRequest:
    """What to report: ``[start, end)`` in UTC, the ``--by`` keys, one campaign or all."""

    start: datetime
    end: datetime
    by: tuple[str, ...] = ("campaign",)
    campaign: str | None = None

    def params(self) -> dict[str, str]:
        """The request as query parameters (the loader's ``/report``)."""
        out = {"from": _text(self.start), "to": _text(self.end), "by": ",".join(self.by)}
        if self.campaign is not None:
            out["campaign"] = self.campaign
        return out


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def parse_time(text: str, end: bool = False) -> datetime:
    """Parse ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]`` (UTC).

    A date as the end of a range means the whole day: the next midnight.
    """
    if not _TIME.match(text.strip()):
        raise ReportError(f"{text!r} is not a date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM[:SS])")
    text = text.strip().rstrip("Z").replace(" ", "T")
    try:
        if "T" not in text:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
            return (moment + timedelta(days=1) if end else moment).replace(tzinfo=UTC)
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError as ex:
        raise ReportError(f"{text!r}: {ex}") from None


def make_request(
    start: str | None = None,
    end: str | None = None,
    by: str | None = None,
    campaign: str | None = None,
    now: datetime | None = None,
) -> ReportRequest:
    """Build a request from the command's text options; the default is the last 7 days.

    Raises:
        ReportError: An option is not valid; the message names it.
    """
    today = (now or datetime.now(UTC)).date()
    first = parse_time(start) if start else None
    last = parse_time(end, end=True) if end else None
    if first is None:
        first = (last - timedelta(days=7)) if last else _midnight(today - timedelta(days=6))
    if last is None:
        last = _midnight(today + timedelta(days=1))
    if last <= first:
        raise ReportError(f"--to ({_text(last)}) must be after --from ({_text(first)})")
    keys = tuple(k.strip() for k in (by or "campaign").split(",") if k.strip())
    unknown = [k for k in keys if k not in DIMENSIONS]
    if unknown or not keys or len(set(keys)) != len(keys):
        raise ReportError(
            f"--by takes a comma-separated list of {', '.join(DIMENSIONS)} without repeats,"
            f" not {by!r}"
        )
    return ReportRequest(first, last, keys, campaign or None)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time()).replace(tzinfo=UTC)


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql(request: ReportRequest) -> str:
    """Return the report's query for ``request``."""
    keys = ", ".join(f"{DIMENSIONS[k]} AS `{k}`" for k in request.by)
    counted = ",\n    ".join(f"{expr} AS {name}" for name, expr in COUNTED.items())
    where = f"t >= {_ts(request.start)} AND t < {_ts(request.end)}"
    if request.campaign is not None:
        where += f" AND campaign_id = {_literal(request.campaign)}"
    order = ", ".join(f"`{k}`" for k in request.by)
    return f"""
WITH firsts AS (
    SELECT type, id, min(received_at) AS t, min({_COPY}) AS copy, {_FIRST}
    FROM {schema.EVENTS}
    GROUP BY type, id
),
currencies AS (
    SELECT campaign_id, argMin({_MONEY}, copy) AS campaign_currency
    FROM firsts WHERE {SPENDABLE}
    GROUP BY campaign_id
)
SELECT {keys},
    {counted}
FROM (
    SELECT *, {SPENDABLE} AS spendable, {_MONEY} AS money FROM firsts WHERE {where}
) AS f
LEFT JOIN currencies AS c ON f.campaign_id = c.campaign_id
GROUP BY {order}
ORDER BY {order}
SETTINGS join_use_nulls = 0
"""


def _ts(moment: datetime) -> str:
    return f"toDateTime64('{moment.strftime('%Y-%m-%d %H:%M:%S')}', 3, 'UTC')"


def finish(rows: list[dict[str, Any]], by: tuple[str, ...]) -> list[dict[str, Any]]:
    """Put the keys and metrics in order as JSON numbers, and add the ratios (null on 0)."""
    out = []
    for raw in rows:
        row = {k: raw[k] for k in by}
        counts = {name: int(raw[name]) for name in COUNTED}
        counts["ctr"] = _ratio(counts["clicks"], counts["impressions"])
        counts["completion_rate"] = _ratio(counts["video_completes"], counts["video_starts"])
        counts["win_rate"] = _ratio(counts["wins"], counts["wins"] + counts["losses"])
        counts["ecpm_micros"] = (
            counts["spend_micros"] * 1000 // counts["impressions"]
            if counts["impressions"]
            else None
        )
        row.update((name, counts[name]) for name in METRICS)
        out.append(row)
    return out


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def run(store: Any, request: ReportRequest) -> list[dict[str, Any]]:
    """Run the report on ``store``: one dict per ``--by`` key, metrics in :data:`METRICS` order."""
    return finish(store.rows(sql(request)), request.by)
