"""The validated config as frozen dataclasses: what the rest of the tracker reads.

Defaults live in the marshmallow schemas (:mod:`tracker.config.schemas`), not
here: the builder passes every value, so a default is said once. Secrets are
parsed once, at load: a path holds its signing keys and price decryption as
ready objects, never as text to parse again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tracker.adtech.pricecrypto import PriceCrypto
from tracker.plugins import Plugin


@dataclass(frozen=True)
class FieldConfig:
    """One input field of a tracking path."""

    name: str
    type: str
    sources: tuple[str, ...]
    key: str
    required: bool
    default: Any
    min: float | None
    max: float | None
    min_length: int | None
    max_length: int | None
    pattern: str | None
    choices: tuple[Any, ...] | None
    price_crypto: PriceCrypto | None
    #: An ``auction_price`` refuses clear-text prices once ``price_crypto`` is set.
    require_encrypted: bool
    #: ``url``, ``identifier``, ``consent`` or None: what personal data the value is.
    personal: str | None
    #: What the value means and looks like, for the API document.
    description: str | None


@dataclass(frozen=True)
class RedirectConfig:
    """Where a click may redirect: a signed landing URL, or a host on the allow-list.

    ``signing_keys`` maps each key id to its decoded secret, oldest first.
    """

    url_field: str
    signing_keys: Mapping[str, bytes]
    allowed_hosts: tuple[str, ...]
    fallback_url: str | None
    #: ``url``: the signature covers the landing URL; ``query``: every parameter but ``sig``.
    signature_scope: str


@dataclass(frozen=True)
class ResponseConfig:
    """How a path answers: ``type`` on success, and whether errors still get a pixel."""

    type: str
    always: bool
    redirect: RedirectConfig | None


@dataclass(frozen=True)
class DeliveryConfig:
    """How long a request waits for its event to be safe.

    ``fast``: the answer goes out at once; the event is queued and spooled on
    failure. ``durable``: the answer waits until every collector has the event
    acknowledged or fsynced to its spool, up to ``timeout`` seconds, else 503
    with ``Retry-After: retry_after``.
    """

    mode: str
    timeout: float
    retry_after: int


@dataclass(frozen=True)
class EventIdConfig:
    """Which fields make two requests the same event (docs/event.md, "Event identity").

    Attributes:
        fields: All present: the id is the historical form over these and ``with_``.
        with_: Also in the historical form; an absent value counts as empty.
        extra: Appended to any derived form, each only when present.
        extra_when: Field name and values: ``extra`` counts only for events
            whose field has one of them (a VAST pause's playhead, not a midpoint's).
        fallback: When ``fields`` is incomplete, these all present still derive
            the id (structured form over every present value); else it is random.
    """

    fields: tuple[str, ...]
    with_: tuple[str, ...]
    extra: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    extra_when: tuple[tuple[str, frozenset[str]], ...] = ()


@dataclass(frozen=True)
class BatchConfig:
    """A path that takes a JSON array of events for the named paths."""

    paths: tuple[str, ...]
    max_items: int


@dataclass(frozen=True)
class RateLimitConfig:
    """A token bucket per client: ``burst`` requests at once, refilled at ``per_second``.

    ``key`` is ``ip`` (the client address after the trusted proxies) or
    ``query:<name>`` / ``header:<name>`` (an exchange's seat, for instance),
    falling back to the address when absent. At most ``max_clients`` buckets
    are kept per worker, the least recently seen dropped first.
    """

    per_second: float
    burst: int
    key: str
    max_clients: int


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
    delivery: DeliveryConfig
    event_id: EventIdConfig | None
    user_id: bool
    device_headers: bool
    batch: BatchConfig | None
    rate_limit: RateLimitConfig | None


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
    #: The plugin's frozen options model, or a dict for a plain marshmallow schema.
    options: Any
    filter: FieldFilter | None

    def create(self) -> Plugin:
        """Instantiate the plugin (not yet opened)."""
        options = self.options
        return self.cls(self.name, dict(options) if isinstance(options, Mapping) else options)


@dataclass(frozen=True)
class UserCookieConfig:
    """The first-party user id cookie, and when any identifier may be stored.

    The same decision (:func:`tracker.adtech.consent.may_store_identifier`) sets
    the cookie and keeps ``personal: identifier`` fields and URL queries.
    """

    name: str
    max_age: int
    domain: str | None
    require_consent_signal: bool
    #: The operator's TCF vendor id; when set, GDPR consent must name this vendor.
    vendor_id: int | None
    #: Query parameters a ``personal: url`` field keeps without consent (``utm_*``: a prefix).
    keep_query_params: tuple[str, ...]


@dataclass(frozen=True)
class ServerConfig:
    """Limits and settings shared by all paths."""

    max_body_bytes: int
    max_field_length: int
    max_url_length: int
    max_header_bytes: int
    #: ``first``: a refusal names the first field that failed; ``all``: every one.
    field_errors: str
    trusted_proxies: tuple[str, ...]
    #: CIDRs of server-side callers (SSAI, ad servers) whose device headers are believed.
    ad_inserters: tuple[str, ...]
    user_cookie: UserCookieConfig


@dataclass(frozen=True)
class TagConfig:
    """The browser tag: served at ``route`` (``None``: not served), cached ``max_age`` s."""

    route: str | None
    max_age: int


@dataclass(frozen=True)
class CorsConfig:
    """CORS for the named paths: exact ``allowed_origins`` (``*`` only without credentials)."""

    allowed_origins: tuple[str, ...]
    paths: tuple[str, ...]
    credentials: bool
    max_age: int


@dataclass(frozen=True)
class BrowserConfig:
    """The ``browser`` block."""

    tag: TagConfig
    cors: CorsConfig


@dataclass(frozen=True)
class RejectedConfig:
    """The rejected-requests stream (bad rows): where refusals go, how many.

    Each refusal is kept with probability ``sample_rate``, at most
    ``max_per_second`` per worker, as a ``rejected`` event for ``collectors``;
    query values and headers in its request copy are cut to ``max_value_length``.
    """

    collectors: tuple[str, ...]
    sample_rate: float
    max_per_second: int
    max_value_length: int


@dataclass(frozen=True)
class Config:
    """The whole validated config."""

    server: ServerConfig
    collectors: Mapping[str, PluginConfig]
    preprocessors: Mapping[str, PluginConfig]
    paths: Mapping[str, PathConfig]
    browser: BrowserConfig
    rejected: RejectedConfig | None = None
