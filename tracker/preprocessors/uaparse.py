"""User agent to device class, OS and browser, with ua-parser's regularly released rules.

ua-parser (with the ``ua-parser-builtins`` rules, released with every update of
uap-core) matches about 1,300 regular expressions: a miss costs about 50 µs
with google-re2 screening them, 0.1-3 ms without, so every verdict is kept in a
bounded cache keyed by the user agent, and one process-wide
:class:`UaClassifier` serves both the ``user_agent`` and the ``bot_filter``
preprocessors (one parse, one cache). The rules are loaded and compiled by
:func:`shared_classifier` in a plugin's ``open()``, in the worker, and warmed
with common user agents, so no request pays for that.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable
from typing import NamedTuple

log = logging.getLogger(__name__)

DEVICE_TYPES = ("desktop", "mobile", "tablet", "tv", "console", "bot", "other")
#: Distinct user agents whose classification is kept (about 1 KB each, see docs/performance.md).
DEFAULT_CACHE_SIZE = 8192
#: Only this many leading characters are parsed: real user agents are shorter, and
#: ua-parser's expressions take time in proportion to the length (a 10 KB one, 30 ms).
MAX_PARSED = 512

_TV = re.compile(
    r"smart-?tv|hbbtv|web0s|webos.{0,8}tv|netcast|tizen.{0,40}\btv\b|\btv safari|appletv|"
    r"apple tv|\broku|crkey|googletv|google tv|android tv|bravia|\baft[a-z]{1,4}\b|philipstv|"
    r"viera|aquos|vidaa",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONSOLE = re.compile(r"playstation|xbox|nintendo", re.IGNORECASE)
_TABLET = re.compile(r"tablet|\bipad|kindle|\bsilk/|playbook", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|phone|\bwindows ce\b", re.IGNORECASE)
#: ua-parser OS families of desktop computers.
_DESKTOP_OS = frozenset(
    (
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Fedora",
        "Debian",
        "Chrome OS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
        "Mageia",
        "Arch Linux",
        "Linux Mint",
        "openSUSE",
        "Red Hat",
        "CentOS",
        "elementary OS",
        "Gentoo",
    )
)
_MOBILE_OS = frozenset(("iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "HarmonyOS"))
#: Common user agents parsed at open(), so that the first requests do not pay.
WARM_UP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
)


class Device(NamedTuple):
    """What a user agent says about the device, the OS and the browser (None: unknown)."""

    device_type: str
    os: str | None
    os_version: str | None
    browser: str | None
    browser_version: str | None
    #: Whether ua-parser recognises a crawler (its device family ``Spider``).
    spider: bool
    #: What was wrong with the user agent, for the failure metric: ``too_long``,
    #: ``control_characters``, ``unrecognised``; None when nothing was.
    problem: str | None = None


class UaClassifier:
    """Classify user agents with ua-parser, behind a bounded cache.

    Args:
        cache_size: Distinct user agents whose classification is kept.
    """

    def __init__(self, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        # Imported here: compiling about 1,300 expressions (0.2-0.6 s) belongs
        # in the worker, not in the master or the CLI.
        from ua_parser import Domain, load_builtins

        self._resolve, self.engine = _resolver(load_builtins())
        self._all = Domain.ALL
        self.resize(cache_size)

    def resize(self, cache_size: int) -> None:
        """Start a new cache of ``cache_size`` entries, warmed with :data:`WARM_UP`."""
        self.cache_size = cache_size
        self.classify = functools.lru_cache(maxsize=cache_size)(self._classify)
        for user_agent in WARM_UP:
            self.classify(user_agent)

    def _classify(self, user_agent: str) -> Device:
        """Parse ``user_agent`` (at most :data:`MAX_PARSED` characters) into a :class:`Device`."""
        problem = None
        if len(user_agent) > MAX_PARSED:
            problem = "too_long"
        elif _CONTROL.search(user_agent):
            problem = "control_characters"
        user_agent = user_agent[:MAX_PARSED]
        result = self._resolve(user_agent, self._all)
        agent, system, device = result.user_agent, result.os, result.device
        os_name = system.family if system and system.family != "Other" else None
        browser = agent.family if agent and agent.family != "Other" else None
        spider = device is not None and device.family == "Spider"
        if problem is None and os_name is None and browser is None and not spider:
            problem = "unrecognised"
        return Device(
            device_type=_device_type(user_agent, os_name, device.family if device else "", spider),
            os=os_name,
            os_version=system.major if os_name and system else None,
            browser=browser,
            browser_version=agent.major if browser and agent else None,
            spider=spider,
            problem=problem,
        )


def _resolver(matchers) -> tuple[Callable, str]:
    """Return ua-parser's fastest resolver available, and its name.

    With google-re2 one automaton screens the rules and only the rule that
    matches runs in Python: a first sight costs about 50 µs instead of 750 µs
    (docs/performance.md), for 10 MiB more per worker. Without it, the plain
    resolver tries the rules in turn.
    """
    try:
        from ua_parser.re2 import Resolver

        return Resolver(matchers), "re2"
    except ImportError:
        from ua_parser import BasicResolver

        log.warning("google-re2 is not installed: ua-parser runs its rules one by one (slower)")
        return BasicResolver(matchers), "python"


def _device_type(user_agent: str, os_name: str | None, family: str, spider: bool) -> str:
    # Order matters: a TV or a console runs Linux or Android, a tablet Android.
    if spider:
        return "bot"
    if _TV.search(user_agent) or "TV" in family:
        return "tv"
    if _CONSOLE.search(user_agent):
        return "console"
    if _TABLET.search(user_agent) or family.endswith("Tablet"):
        return "tablet"
    if os_name == "Android":
        # Android phones say "Mobile"; Android tablets leave it out.
        return "mobile" if "Mobile" in user_agent else "tablet"
    if os_name in _MOBILE_OS or _MOBILE.search(user_agent):
        return "mobile"
    if os_name in _DESKTOP_OS:
        return "desktop"
    return "other"


_shared: dict[int, UaClassifier] = {}
_lock = threading.Lock()


def shared_classifier(cache_size: int = DEFAULT_CACHE_SIZE) -> UaClassifier:
    """Return this process's classifier, loading the rules on the first call.

    Plugins call it from ``open()`` and keep it; the largest cache size asked
    for wins (the one cache is resized in place, so every holder sees it).
    """
    with _lock:
        current = _shared.get(0)
        if current is None:
            _shared[0] = current = UaClassifier(cache_size)
        elif current.cache_size < cache_size:
            current.resize(cache_size)
        return current
