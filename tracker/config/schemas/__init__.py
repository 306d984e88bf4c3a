"""Marshmallow schemas of the config file, and the one home of its defaults.

Every schema rejects unknown keys (marshmallow's default), so a typo is an
error with its dotted path, never a silently ignored setting. One module per
block: :mod:`.base` (vocabularies and shared field types), :mod:`.field`,
:mod:`.path`, :mod:`.server`, :mod:`.browser`, :mod:`.root`.
"""

from tracker.config.schemas.base import (
    CONSENT_FIELDS,
    DELIVERY_CLASSES,
    EVENT_TYPE,
    FIELD_TYPES,
    FILTER_NAME,
    METHODS,
    NAME,
    NUMERIC,
    PERSONAL,
    RESPONSE_TYPES,
    SOURCES,
    STRUCTURED,
    MetricMap,
    NameMap,
    NetworkList,
    StringOrList,
    check_network,
)
from tracker.config.schemas.browser import (
    ORIGIN,
    BrowserSchema,
    CorsSchema,
    TagSchema,
)
from tracker.config.schemas.field import (
    FieldSchema,
)
from tracker.config.schemas.identity import EventIdSchema
from tracker.config.schemas.path import (
    BatchSchema,
    DeliverySchema,
    PathSchema,
    RateLimitSchema,
    RedirectSchema,
    ResponseSchema,
)
from tracker.config.schemas.root import (
    RootSchema,
)
from tracker.config.schemas.server import (
    FilterSchema,
    RejectedSchema,
    ServerSchema,
    UserCookieSchema,
)

__all__ = [
    "CONSENT_FIELDS",
    "DELIVERY_CLASSES",
    "EVENT_TYPE",
    "FIELD_TYPES",
    "FILTER_NAME",
    "METHODS",
    "NAME",
    "NUMERIC",
    "ORIGIN",
    "PERSONAL",
    "RESPONSE_TYPES",
    "SOURCES",
    "STRUCTURED",
    "BatchSchema",
    "BrowserSchema",
    "CorsSchema",
    "DeliverySchema",
    "EventIdSchema",
    "FieldSchema",
    "FilterSchema",
    "MetricMap",
    "NameMap",
    "NetworkList",
    "PathSchema",
    "RateLimitSchema",
    "RedirectSchema",
    "RejectedSchema",
    "ResponseSchema",
    "RootSchema",
    "ServerSchema",
    "StringOrList",
    "TagSchema",
    "UserCookieSchema",
    "check_network",
]
