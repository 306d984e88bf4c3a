"""A stand-in for a VAST 4 media player: find the tracking URLs and fill their macros.

Tests use it to fire the pixels of ``tests/fixtures/vast/*.xml`` the way a real
player would, without a player.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

FIXTURES = Path(__file__).parent / "fixtures" / "vast"

#: Host name of the tracker in the fixtures, replaced by the tests.
PLACEHOLDER_HOST = "TRACKER"

#: Elements whose text is a tracking URL, and the event they report; ``Tracking``
#: names its event in its ``event`` attribute.
URL_ELEMENTS = {"Impression": "impression", "Error": "error", "ClickTracking": "clickTracking"}


def tracking_urls(xml_text: str, host: str | None = None) -> list[tuple[str, str]]:
    """Return ``(event, url)`` for every tracking URL of a VAST document, in order.

    ``Impression``, ``Error``, ``ClickTracking`` and every ``Tracking`` element
    count; ``ClickThrough`` (the landing page) and media files do not. Works
    with or without the VAST namespace.

    Args:
        xml_text: The VAST document.
        host: If given, replaces the placeholder host ``TRACKER`` in the URLs.
    """
    found = []
    for element in ET.fromstring(xml_text).iter():
        tag = element.tag.rpartition("}")[2]
        event = element.get("event") if tag == "Tracking" else URL_ELEMENTS.get(tag)
        url = (element.text or "").strip()
        if event and url:
            found.append((event, url if host is None else _with_host(url, host)))
    return found


def format_playhead(millis: int) -> str:
    """Format milliseconds as ``HH:MM:SS.mmm``, the ``[ADPLAYHEAD]`` format."""
    seconds, millis = divmod(millis, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def fill_vast_macros(
    url: str,
    playhead_ms: int | None = None,
    error_code: int | None = None,
    cachebuster: int | None = None,
    *,
    keep_unknown: bool = False,
) -> str:
    """Replace ``[ADPLAYHEAD]``, ``[ERRORCODE]`` and ``[CACHEBUSTING]`` as a player does.

    Values are percent-encoded (VAST 4.3 §6.1: "the encoded version must always
    be used"), so a playhead of 11355 ms becomes ``00%3A00%3A11.355``. A value
    the player does not know (``None``) becomes ``-1``, the VAST 4.1+ marker for
    "unknown"; with ``keep_unknown`` the macro is left as it is, like a player
    that does not support it. Other macros are left alone.

    Args:
        url: A tracking URL from :func:`tracking_urls`.
        playhead_ms: Position in the ad, in milliseconds.
        error_code: The VAST error code, for ``Error`` URLs.
        cachebuster: The 8-digit random number; drawn at random if ``None``.
        keep_unknown: Leave the macros whose value is ``None`` unsubstituted.
    """
    if cachebuster is None:
        cachebuster = random.randint(10_000_000, 99_999_999)
    values = {
        "[ADPLAYHEAD]": None if playhead_ms is None else format_playhead(playhead_ms),
        "[ERRORCODE]": None if error_code is None else str(error_code),
        "[CACHEBUSTING]": f"{cachebuster:08d}",
    }
    for macro, value in values.items():
        if value is not None:
            url = url.replace(macro, quote(value, safe=""))
        elif not keep_unknown:
            url = url.replace(macro, "-1")
    return url


def play(
    urls: Iterable[tuple[str, str]],
    playhead_ms: Mapping[str, int | None],
    error_code: int | None = None,
) -> list[tuple[str, str]]:
    """Fire the URLs of a simulated playback: return the filled ``(event, url)`` pairs.

    Args:
        urls: Output of :func:`tracking_urls`.
        playhead_ms: The events that happen, in order, each with the ad
            position at that moment (``None`` if the player does not know it).
            Every URL of an event is fired, in document order.
        error_code: If not ``None``, the ``error`` URLs are fired last with it.
    """
    urls = list(urls)
    happened = dict(playhead_ms)
    if error_code is not None:
        happened.setdefault("error", None)
    return [
        (event, fill_vast_macros(url, position, error_code if event == "error" else None))
        for event, position in happened.items()
        for kind, url in urls
        if kind == event
    ]


def _with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    if parts.hostname != PLACEHOLDER_HOST.lower():
        return url
    return urlunsplit(parts._replace(netloc=host))
