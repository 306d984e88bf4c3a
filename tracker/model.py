"""The validated config as frozen dataclasses: what the rest of the tracker reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracker.plugins import Plugin


@dataclass(frozen=True)
class FieldConfig:
    """One input field of a tracking path."""

    name: str
    type: str
    sources: tuple[str, ...]
    key: str
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[Any, ...] | None = None
    price_keys: tuple[str, str] | None = None


@dataclass(frozen=True)
class RedirectConfig:
    """Where a click may redirect: a signed landing URL, or a host on the allow-list."""

    url_field: str
    signing_keys: str = ""
    allowed_hosts: tuple[str, ...] = ()
    fallback_url: str | None = None


@dataclass(frozen=True)
class ResponseConfig:
    """How a path answers: ``type`` on success, and whether errors still get a pixel."""

    type: str = "json"
    always: bool = False
    redirect: RedirectConfig | None = None


@dataclass(frozen=True)
class DeliveryConfig:
    """How long a request waits for its event to be safe.

    ``fast``: the answer goes out at once; the event is queued and spooled on
    failure. ``durable``: the answer waits until every collector has the event
    acknowledged or fsynced to its spool, up to ``timeout`` seconds, else 503
    with ``Retry-After: retry_after``.
    """

    mode: str = "fast"
    timeout: float = 5.0
    retry_after: int = 5


@dataclass(frozen=True)
class EventIdConfig:
    """Derive the event id from ``fields`` (all present) plus ``with_`` (when present)."""

    fields: tuple[str, ...]
    with_: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchConfig:
    """A path that takes a JSON array of events for the named paths."""

    paths: tuple[str, ...]
    max_items: int = 100


@dataclass(frozen=True)
class PathConfig:
    """One configured tracking path."""

    name: str
    route: str
    methods: tuple[str, ...]
    event_type: str
    fields: tuple[FieldConfig, ...]
    dimensions: tuple[tuple[str, str], ...]
    metrics: tuple[tuple[str, str | int | float], ...]
    preprocessors: tuple[str, ...]
    collectors: tuple[str, ...]
    response: ResponseConfig
    max_body_bytes: int
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    event_id: EventIdConfig | None = None
    user_id: bool = False
    device_headers: bool = False
    batch: BatchConfig | None = None


@dataclass(frozen=True)
class FieldFilter:
    """Which parts of an event a collector may see: ``mode`` is ``allow`` or ``deny``."""

    mode: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class PluginConfig:
    """A collector or preprocessor block: its class and validated options."""

    name: str
    type: str
    cls: type[Plugin]
    options: Mapping[str, Any]
    filter: FieldFilter | None = None

    def create(self) -> Plugin:
        """Instantiate the plugin (not yet opened)."""
        return self.cls(self.name, dict(self.options))


@dataclass(frozen=True)
class UserCookieConfig:
    """The first-party user id cookie, set only with consent."""

    name: str = "tuid"
    max_age: int = 34_128_000
    domain: str | None = None
    require_consent_signal: bool = True


@dataclass(frozen=True)
class ServerConfig:
    """Limits and settings shared by all paths."""

    max_body_bytes: int = 65536
    max_field_length: int = 1024
    max_url_length: int = 4096
    max_header_bytes: int = 16384
    trusted_proxies: tuple[str, ...] = ()
    user_cookie: UserCookieConfig = field(default_factory=UserCookieConfig)


@dataclass(frozen=True)
class Config:
    """The whole validated config."""

    server: ServerConfig
    collectors: Mapping[str, PluginConfig]
    preprocessors: Mapping[str, PluginConfig]
    paths: Mapping[str, PathConfig]
