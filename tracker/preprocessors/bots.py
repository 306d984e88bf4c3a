"""Bot and spider flagging: mark or drop events whose user agent is not a person."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from tracker.config import NAME
from tracker.event import Event
from tracker.plugins import Preprocessor
from tracker.preprocessors.uaparse import UaClassifier, shared_classifier

#: Case-insensitive regular expressions searched anywhere in the user agent.
#: Our own list (the IAB/ABC list is licensed). A crawler whose name contains a
#: generic token is not listed again: every pattern is one more branch tried at
#: every position of every browser's user agent, and the tests check each
#: well-known crawler by name instead.
DEFAULT_PATTERNS: tuple[str, ...] = (
    # Generic tokens. Googlebot, bingbot, YandexBot, DuckDuckBot, Applebot,
    # Twitterbot, LinkedInBot, Slackbot, Discordbot, TelegramBot, AhrefsBot,
    # SemrushBot, MJ12bot, DotBot, PetalBot, GPTBot, ClaudeBot, CCBot,
    # PerplexityBot, Amazonbot, AdsBot-Google, UptimeRobot and Pingdom's pingbot
    # end in "bot"; Baiduspider and Bytespider in "spider". CUBOT is an Android
    # phone brand whose model names ("CUBOT_X19", "CUBOT NOTE 20") real browsers
    # report. The look-behind comes after the literal so that it is only
    # evaluated where "bot" was found.
    r"bot(?<!cubot)",
    "crawl",
    "spider",
    "slurp",
    "scrape",
    "fetch",
    "monitor",
    "preview",
    "headless",
    # Crawlers and link expanders without a generic token in their name.
    "facebookexternalhit",
    "meta-externalagent",
    "mediapartners-google",
    "google-inspectiontool",
    "googleother",
    "chrome-lighthouse",
    "ia_archiver",
    "embedly",
    # WhatsApp's link preview sends only "WhatsApp/<version> <platform>".
    "^whatsapp/",
    # Automation and HTTP libraries.
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "curl/",
    "wget",
    "libwww-perl",
    r"\bjava/",
    "okhttp",
    "apache-httpclient",
    "axios/",
    "scrapy",
    "postmanruntime",
    # Uptime monitors.
    "pingdom",
    "statuscake",
    "site24x7",
)

ACTIONS = ("flag", "drop")


def compile_patterns(patterns: Iterable[str]) -> re.Pattern[str]:
    """Combine ``patterns`` into one case-insensitive alternation.

    One expression searched once is cheaper than a loop over many. Patterns
    share the expression, so numbered back-references (``\\1``) would point at
    another pattern's group; use non-capturing groups.

    Raises:
        re.error: A pattern is invalid, or two patterns define the same group name.
    """
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


class RegexString(fields.String):
    """A string that must compile as a regular expression and not match ``""``."""

    default_error_messages = {
        "regex": "Not a valid regular expression: {error}.",
        "empty_match": "Matches the empty string, so it would match every user agent.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        pattern = super()._deserialize(value, attr, data, **kwargs)
        try:
            compiled = re.compile(pattern)
        except re.error as ex:
            raise self.make_error("regex", error=ex) from ex
        try:
            # Inline global flags such as "(?i)" are valid alone but not inside
            # the alternation; the position there would not match the pattern.
            re.compile(f"(?:{pattern})")
        except re.error as ex:
            raise self.make_error("regex", error=ex.msg) from ex
        if compiled.search("") is not None:
            raise self.make_error("empty_match")
        return pattern


class BotFilterOptions(Schema):
    """Options of the ``bot_filter`` preprocessor."""

    action = fields.String(
        load_default="flag",
        validate=validate.OneOf(ACTIONS),
        metadata={
            "description": (
                "`flag`: every event gets the boolean dimension `dimension`; `drop`: bot "
                "events are dropped (counted)."
            )
        },
    )
    patterns = fields.List(
        RegexString(),
        load_default=None,
        validate=validate.Length(min=1),
        metadata={
            "description": (
                "Case-insensitive regular expressions replacing the shipped list of crawler, "
                "headless-browser, HTTP-library and monitor patterns."
            )
        },
    )
    extra_patterns = fields.List(
        RegexString(),
        load_default=list,
        metadata={"description": "Patterns added to the list in use."},
    )
    dimension = fields.String(
        load_default="is_bot",
        validate=validate.Regexp(NAME, error="Must match {regex}."),
        metadata={"description": "Name of the dimension `action: flag` sets."},
    )
    parser = fields.Boolean(
        load_default=True,
        metadata={
            "description": (
                "Also count as a bot what ua-parser's rules know as a crawler (the parser the "
                "`user_agent` preprocessor uses, loaded in each worker: about 16 MiB); either "
                "verdict makes a bot."
            )
        },
    )
    empty_user_agent_is_bot = fields.Boolean(
        load_default=True, metadata={"description": "Count a missing or empty user agent as a bot."}
    )

    @validates_schema(skip_on_field_errors=True)
    def _patterns_combine(self, data: dict[str, Any], **kwargs: Any) -> None:
        try:
            compile_patterns(effective_patterns(data))
        except re.error as ex:
            # The position would be in the combined expression, which nobody wrote.
            raise ValidationError(
                f"Patterns cannot be combined into one expression: {ex.msg}."
            ) from ex


def effective_patterns(options: dict[str, Any]) -> list[str]:
    """Return ``patterns`` (or the default list) followed by ``extra_patterns``."""
    base = options.get("patterns") or DEFAULT_PATTERNS
    return [*base, *options.get("extra_patterns", ())]


class BotFilter(Preprocessor):
    """Flag or drop events whose ``context.user_agent`` looks like a bot.

    The user agent is searched, case-insensitively, for any of the patterns:
    ``patterns`` replaces :data:`DEFAULT_PATTERNS`, ``extra_patterns`` adds to
    whichever list is in use. A missing or empty user agent counts as a bot
    unless ``empty_user_agent_is_bot`` is false: browsers always send one, and
    the IAB/ABC invalid-traffic guidelines treat its absence as a bot signal.

    With ``parser`` (the default) a user agent that ua-parser's rules, released
    with uap-core and loaded in :meth:`open`, know as a crawler is a bot too:
    either verdict makes a bot and neither clears the other, so the patterns
    catch HTTP libraries and automation the parser calls browsers, and the
    parser catches crawlers the patterns do not name.

    With ``action: flag`` (the default) every event gets the boolean dimension
    named by ``dimension`` (default ``is_bot``), so downstream filters can tell
    "not a bot" from "not checked". With ``action: drop`` bot events are dropped
    (the pipeline counts them) and the others pass unchanged.
    """

    options_schema: ClassVar = BotFilterOptions

    #: Distinct user agents whose verdict is remembered. Traffic repeats a few
    #: thousand user agents, and a search over every pattern costs 10-90 us a
    #: user agent while a cache hit costs well under 1 us; the cache is bounded.
    CACHE_SIZE = 8192

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.regex = compile_patterns(effective_patterns(options))
        self.drop = options["action"] == "drop"
        self.dimension = options["dimension"]
        self.empty_is_bot = options["empty_user_agent_is_bot"]
        self.use_parser = options["parser"]
        self.classifier: UaClassifier | None = None
        self._matches = functools.lru_cache(maxsize=self.CACHE_SIZE)(self._search)

    def open(self) -> None:
        """Load the parser's rules (shared with ``user_agent``) when ``parser`` is on."""
        if self.use_parser:
            self.classifier = shared_classifier()

    def _search(self, user_agent: str) -> bool:
        if self.regex.search(user_agent) is not None:
            return True
        return self.classifier is not None and self.classifier.classify(user_agent).spider

    def is_bot(self, user_agent: str | None) -> bool:
        """Return whether ``user_agent`` matches a pattern, or is empty and that counts."""
        if not user_agent:
            return self.empty_is_bot
        return self._matches(user_agent)

    def process(self, event: Event) -> Event | None:
        """Set the bot dimension, or drop the event if it is a bot and dropping is on."""
        bot = self.is_bot(event.context.get("user_agent"))
        if self.drop:
            return None if bot else event
        event.dimensions[self.dimension] = bot
        return event
