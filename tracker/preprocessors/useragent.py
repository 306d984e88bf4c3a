"""User agent to event dimensions: device type, OS, browser, with client hints."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

import tracker.metrics as metrics
from tracker.config import NAME
from tracker.event import Event
from tracker.plugins import Preprocessor
from tracker.preprocessors.uaparse import DEFAULT_CACHE_SIZE, UaClassifier, shared_classifier

#: The context key under which the request's ``Sec-CH-UA-*`` hints arrive (see
#: :class:`tracker.http.extract.ContextReader`); the preprocessor takes it out.
HINTS = "client_hints"
#: ``Sec-CH-UA-Platform`` values as ua-parser names the same OS.
_PLATFORMS = {
    "Windows": "Windows",
    "macOS": "Mac OS X",
    "Android": "Android",
    "iOS": "iOS",
    "Chrome OS": "Chrome OS",
    "Chromium OS": "Chrome OS",
    "Linux": "Linux",
}


class UserAgentOptions(Schema):
    """Options of the ``user_agent`` preprocessor."""

    cache_size = fields.Integer(
        load_default=DEFAULT_CACHE_SIZE,
        validate=validate.Range(min=16, max=1_000_000),
        metadata={
            "description": (
                "Distinct user agents whose parse is kept, per worker (about 1 KB each); "
                "shared with `bot_filter`'s parser, the largest size configured wins."
            )
        },
    )
    bot_dimension = fields.String(
        load_default="is_bot",
        validate=validate.Regexp(NAME, error="Must match {regex}."),
        metadata={
            "description": (
                "The dimension a `bot_filter` before this preprocessor sets: when it is true, "
                "`device_type` is `bot`."
            )
        },
    )


class UserAgentParser(Preprocessor):
    """Set ``device_type``, ``os``, ``os_version``, ``browser`` and ``browser_version``.

    The user agent is parsed with ua-parser (see
    :mod:`tracker.preprocessors.uaparse`); versions are majors. ``device_type``
    is one of ``desktop``, ``mobile``, ``tablet``, ``tv``, ``console``, ``bot``
    and ``other``, and is ``bot`` whenever the event is flagged as a bot or the
    parser knows the crawler. The other dimensions are absent when unknown.

    User-Agent Client Hints (``Sec-CH-UA-Platform``, ``-Platform-Version``,
    ``-Mobile``), when the browser sent them, win over the user agent: reduced
    user agents freeze the platform version (Windows 10, Android 10, macOS
    10.15.7). Windows 11 reports a platform version of 13 or more.
    """

    options_schema: ClassVar = UserAgentOptions
    failure_reasons: ClassVar = ("missing", "too_long", "control_characters", "unrecognised")
    #: Tells the app to read the request's client hints into the context.
    reads_client_hints: ClassVar[bool] = True

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.cache_size = options["cache_size"]
        self.bot_dimension = options["bot_dimension"]
        self.classifier: UaClassifier | None = None

    def open(self) -> None:
        """Load and compile the parser's rules, and warm the cache."""
        self.classifier = shared_classifier(self.cache_size)

    def process(self, event: Event) -> Event:
        """Add the device, OS and browser dimensions."""
        context = event.context
        hints = context.pop(HINTS, None)
        user_agent = context.get("user_agent")
        dimensions = event.dimensions
        if not user_agent:
            metrics.inc(metrics.ENRICH_FAILURES, self.name, "missing")
            dimensions["device_type"] = "bot" if dimensions.get(self.bot_dimension) else "other"
            return event
        device = self.classifier.classify(user_agent)
        if device.problem is not None:
            metrics.inc(metrics.ENRICH_FAILURES, self.name, device.problem)
        device_type, os_name, os_version = device.device_type, device.os, device.os_version
        if hints:
            device_type, os_name, os_version = _with_hints(hints, device_type, os_name, os_version)
        if dimensions.get(self.bot_dimension):
            device_type = "bot"
        dimensions["device_type"] = device_type
        if os_name is not None:
            dimensions["os"] = os_name
            if os_version is not None:
                dimensions["os_version"] = os_version
        if device.browser is not None:
            dimensions["browser"] = device.browser
            if device.browser_version is not None:
                dimensions["browser_version"] = device.browser_version
        return event


def _with_hints(
    hints: dict[str, str], device_type: str, os_name: str | None, os_version: str | None
) -> tuple[str, str | None, str | None]:
    """Return device type, OS and OS version corrected by the client hints."""
    platform = _PLATFORMS.get(hints.get("platform", "").strip('" '))
    if platform is not None:
        if platform != os_name:
            os_name, os_version = platform, None
        major = hints.get("platform_version", "").strip('" ').partition(".")[0]
        if major.isdigit() and len(major) <= 3:
            windows = platform == "Windows"
            os_version = _windows_version(int(major), os_version) if windows else major
    mobile = hints.get("mobile")
    if mobile == "?1" and device_type in ("desktop", "other"):
        device_type = "mobile"
    return device_type, os_name, os_version


def _windows_version(major: int, fallback: str | None) -> str | None:
    """Map ``Sec-CH-UA-Platform-Version``'s major to the Windows release it means."""
    if major >= 13:
        return "11"
    if major >= 1:
        return "10"
    # 0: Windows 7, 8 or 8.1, which the user agent still tells apart.
    return fallback
