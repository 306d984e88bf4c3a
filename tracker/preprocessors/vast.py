"""VAST tracking metrics: turn the raw strings of a VAST pixel into summable metrics.

A VAST 4 player fires one tracking URL per event (``GET /vast/{event}``). The
path's config maps the event name to the dimension ``vast_event`` and the query
to raw string dimensions; this preprocessor parses the ones whose format VAST
defines and replaces them with integer metrics:

* ``playhead`` (the ``[ADPLAYHEAD]`` macro) becomes the metric ``playhead_ms``.
  It must be the position in the ad: ``[CONTENTPLAYHEAD]`` (deprecated in VAST
  4.1) and ``[MEDIAPLAYHEAD]`` are the position in the content around the ad, so
  they would make ``watch_ms`` wrong;
* ``offset`` (the ``offset`` attribute of a ``progress`` Tracking element) becomes
  ``offset_ms``;
* ``duration`` (the creative's ``<Duration>``, written into the URL by the ad
  server) becomes ``duration_ms``;
* on ``error`` events, ``error_code`` (the ``[ERRORCODE]`` macro) becomes an
  integer, and ``error_name`` names it from the VAST error code table.

Times are ``HH:MM:SS`` with optional ``.mmm`` (VAST 4.3 §3.8.1, §3.14.3 and the
``[ADPLAYHEAD]`` entry of the VAST 4.x macro list); an offset may also be a
percentage ``n%`` of the duration. A value that is empty, still the literal
macro (``[ADPLAYHEAD]``: a player that does not know the macro), or ``-1`` /
``-2`` (VAST 4.3 §6.1: "unknown" and "withheld by policy") counts as absent.
Anything else that does not parse is dropped and explained in the dimension
``vast_warning``; the event itself is never rejected.

Every VAST event also gets ``vast_events: 1`` and a counter named after the
event (:data:`EVENT_METRICS`), and ``watch_ms``: how far into the ad the viewer
had got, from the playhead, else the progress offset, else the position the
event name implies (``start`` 0, quartiles 25/50/75/100 % of the duration; turned
off by ``quartile_watch_time: false``). A player that measures the time it
actually played (the browser tag does: seeking ahead does not count) sends it
as ``watch_time``, in the same ``HH:MM:SS.mmm`` form, and that is ``watch_ms``.
It grows through a view like the playhead does, so the formulas below hold.

Downstream formulas (sums over any set of events, e.g. per campaign and day):

* Completion rate = ``sum(completes) / sum(starts)``. Both are counted once per
  view by the player, so the ratio needs no grouping.
* Average watch time per started view, exact version: group by impression
  (``impression_id``), take ``max(watch_ms)`` of each view's events, and average
  over the views that have a ``start``. Every started view has a value (the
  ``start`` itself is 0, unless ``quartile_watch_time`` is off), and the
  furthest event seen is the best lower bound of where the viewer left, whether
  they completed, skipped or just went away. Repeated pixels do not change it.
* Average watch time without grouping (quartile precision, lower bound):
  ``sum(duration_ms over firstQuartile, midpoint, thirdQuartile and complete
  events) / 4 / sum(starts)``. Each of those events proves another quarter of
  the ad was watched, so a view contributes what it is known to have watched;
  it stays correct when creatives of different lengths are summed together.

Summing ``watch_ms`` over ``complete`` and ``skip`` events is not an average
watch time: viewers who leave without either event (closing the page is the
common case) are not counted, and a ``skip`` has no position without a playhead.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from marshmallow import Schema, fields

from tracker.event import Event
from tracker.plugins import Preprocessor

#: Counter metric set to 1 for each ``vast_event`` value.
EVENT_METRICS: dict[str, str] = {
    "impression": "impressions",
    "creativeView": "creative_views",
    "start": "starts",
    "firstQuartile": "first_quartiles",
    "midpoint": "midpoints",
    "thirdQuartile": "third_quartiles",
    "complete": "completes",
    "skip": "skips",
    "pause": "pauses",
    "resume": "resumes",
    "mute": "mutes",
    "unmute": "unmutes",
    "progress": "progress_events",
    "clickTracking": "clicks",
    "error": "errors",
}

#: Counters of events that VAST has no tracking event for, but an HTML5 player
#: reports (the browser tag's ``seek``).
PLAYER_EVENT_METRICS: dict[str, str] = {"seek": "seeks"}

#: Percentage of the duration the player has played when it fires the event
#: (VAST 4.3 §3.14.1).
EVENT_POSITION: dict[str, int] = {
    "firstQuartile": 25,
    "midpoint": 50,
    "thirdQuartile": 75,
    "complete": 100,
}

#: VAST error codes (VAST 4.3 §2.3.6.3, error codes table), in short.
ERROR_NAMES: dict[int, str] = {
    100: "XML parsing error",
    101: "VAST schema validation error",
    102: "VAST version of response not supported",
    200: "Trafficking error",
    201: "Media player expecting different linearity",
    202: "Media player expecting different duration",
    203: "Media player expecting different size",
    204: "Ad category was required but not provided",
    205: "Inline Category violates Wrapper BlockedAdCategories",
    206: "Ad Break shortened",
    300: "General Wrapper error",
    301: "Timeout of VAST URI provided in Wrapper element",
    302: "Wrapper limit reached",
    303: "No VAST response after one or more Wrappers",
    304: "InLine ad unit not displayed within time limit",
    400: "General Linear error",
    401: "File not found",
    402: "Timeout of MediaFile URI",
    403: "No supported MediaFile found",
    405: "Problem displaying MediaFile",
    406: "Mezzanine was required but not provided",
    407: "Mezzanine is being downloaded for the first time",
    408: "Conditional ad rejected",
    409: "Interactive unit in InteractiveCreativeFile not executed",
    410: "Verification unit in Verification not executed",
    411: "Mezzanine did not meet required specification",
    500: "General NonLinearAds error",
    501: "NonLinearAd dimensions do not align with display area",
    502: "Unable to fetch NonLinearAds/NonLinear resource",
    503: "No NonLinear resource with supported type found",
    600: "General CompanionAds error",
    601: "Companion dimensions do not fit display area",
    602: "Unable to display required Companion",
    603: "Unable to fetch CompanionAds/Companion resource",
    604: "No Companion resource with supported type found",
    900: "Undefined Error",
    901: "General VPAID error",
    902: "General InteractiveCreativeFile error",
}

#: Name of a code the table does not list, by its hundreds.
ERROR_RANGES: dict[int, str] = {
    1: "XML error",
    2: "Trafficking error",
    3: "Wrapper error",
    4: "Linear error",
    5: "NonLinearAds error",
    6: "CompanionAds error",
    9: "Undefined Error",
}

UNKNOWN_ERROR = "Unknown error"
WARNING = "vast_warning"

# [0-9], not \d: int() would accept the other scripts' digits that \d matches.
_TIME = re.compile(r"([0-9]{1,2}):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]{1,3})[0-9]{0,6})?")
_PERCENT = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,6})?)%")
_CODE = re.compile(r"[0-9]{1,9}")
#: Milliseconds per unit of a one-, two- or three-digit fraction of a second.
_FRACTION_SCALE = (0, 100, 10, 1)
_MACRO = re.compile(r"\[[A-Z0-9_]+\]")
#: VAST 4.3 §6.1: -1 "unknown", -2 "known but not shared because of policy".
_NOT_PROVIDED = frozenset(("", "-1", "-2"))
_SHOWN = 40


class VastMetricsOptions(Schema):
    """Options of the ``vast`` preprocessor."""

    quartile_watch_time = fields.Boolean(
        load_default=True,
        metadata={
            "description": (
                "Estimate `watch_ms` from quartile events and the duration when no playhead "
                "is given; if false, only from a playhead or a progress offset."
            )
        },
    )


class VastMetrics(Preprocessor):
    """Parse VAST times and error codes into metrics, and count VAST events.

    Events without the ``vast_event`` dimension pass unchanged. See the module
    documentation for what is produced and how to aggregate it.

    Options:
        quartile_watch_time: If false, ``watch_ms`` comes only from a playhead
            or a progress offset, never from the position an event name implies
            (``start``, quartiles, ``complete``). Default true.
    """

    options_schema: ClassVar = VastMetricsOptions

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.quartile_watch_time = options["quartile_watch_time"]

    def process(self, event: Event) -> Event:
        """Replace the raw VAST dimensions by metrics and add the counters."""
        dims = event.dimensions
        kind = dims.get("vast_event")
        if kind is None:
            return event
        metrics = event.metrics
        duration = _time_metric(dims, metrics, "duration", "duration_ms")
        playhead = _time_metric(dims, metrics, "playhead", "playhead_ms")
        offset = _offset_metric(dims, metrics, duration)
        watched = _time_metric(dims, metrics, "watch_time", "watch_ms")
        watch = self.watch_ms(kind, playhead, offset, duration)
        if watched is None and watch is not None:
            metrics["watch_ms"] = watch
        metrics["vast_events"] = 1
        counter = EVENT_METRICS.get(kind) or PLAYER_EVENT_METRICS.get(kind)
        if counter is not None:
            metrics[counter] = 1
        if kind == "error":
            _error_dimensions(dims)
        return event

    def watch_ms(
        self, kind: str, playhead: int | None, offset: int | None, duration: int | None
    ) -> int | None:
        """Return the best estimate of the ad position reached at this event."""
        if playhead is not None:
            return playhead
        if kind == "progress":
            return offset
        if not self.quartile_watch_time:
            return None
        if kind == "start":
            return 0
        share = EVENT_POSITION.get(kind)
        if share is None or duration is None:
            return None
        return duration * share // 100


def parse_time(text: str) -> int | None:
    """Return ``HH:MM:SS[.mmm]`` in milliseconds, or ``None`` if it is not one.

    One-digit hours and one to nine fraction digits are accepted (players
    differ); the fraction is truncated to the millisecond.
    """
    match = _TIME.fullmatch(text)
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    millis = (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * 1000
    return millis + int(fraction) * _FRACTION_SCALE[len(fraction)] if fraction else millis


def parse_percent(text: str) -> float | None:
    """Return the number in ``n%`` if it is between 0 and 100, else ``None``."""
    match = _PERCENT.fullmatch(text)
    if match is None:
        return None
    percent = float(match.group(1))
    return percent if percent <= 100 else None


def error_name(code: int | None) -> str:
    """Name a VAST error code, falling back on its range, then on "Unknown error"."""
    if code is None:
        return UNKNOWN_ERROR
    return ERROR_NAMES.get(code) or ERROR_RANGES.get(code // 100, UNKNOWN_ERROR)


def _provided(value: Any) -> str | None:
    """Return ``value`` as stripped text, or ``None`` if the player did not provide it."""
    text = (value if isinstance(value, str) else str(value)).strip()
    if text in _NOT_PROVIDED or (text.startswith("[") and _MACRO.fullmatch(text)):
        return None
    return text


def _warn(dims: dict[str, Any], reason: str) -> None:
    previous = dims.get(WARNING)
    dims[WARNING] = reason if previous is None else f"{previous}; {reason}"


def _shown(text: str) -> str:
    # The value comes from the URL: keep the warning dimension short.
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")


def _time_metric(
    dims: dict[str, Any], metrics: dict[str, int | float], name: str, metric: str
) -> int | None:
    """Move dimension ``name`` to metric ``metric`` in milliseconds, and return it."""
    raw = dims.pop(name, None)
    text = None if raw is None else _provided(raw)
    if text is None:
        return None
    millis = parse_time(text)
    if millis is None:
        _warn(dims, f"invalid {name} {_shown(text)}")
        return None
    metrics[metric] = millis
    return millis


def _offset_metric(
    dims: dict[str, Any], metrics: dict[str, int | float], duration: int | None
) -> int | None:
    """Move dimension ``offset`` (a time or a percentage) to metric ``offset_ms``."""
    raw = dims.pop("offset", None)
    text = None if raw is None else _provided(raw)
    if text is None:
        return None
    if not text.endswith("%"):
        millis = parse_time(text)
    elif (percent := parse_percent(text)) is None:
        millis = None
    elif duration is None:
        _warn(dims, f"offset {_shown(text)} needs a duration")
        return None
    else:
        millis = round(duration * percent / 100)
    if millis is None:
        _warn(dims, f"invalid offset {_shown(text)}")
        return None
    metrics["offset_ms"] = millis
    return millis


def _error_dimensions(dims: dict[str, Any]) -> None:
    """Make ``error_code`` an integer and add ``error_name``."""
    raw = dims.pop("error_code", None)
    code = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        code = raw
    elif raw is not None and (text := _provided(raw)) is not None:
        if _CODE.fullmatch(text):
            code = int(text)
        else:
            _warn(dims, f"invalid error_code {_shown(text)}")
    if code is not None:
        dims["error_code"] = code
    dims["error_name"] = error_name(code)
