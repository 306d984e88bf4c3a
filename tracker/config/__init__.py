"""The tracker config: YAML in, validated and frozen dataclasses out.

:func:`load_file` is the entry point; :mod:`~tracker.config.loader` reads and
expands the file, :mod:`~tracker.config.schemas` holds the marshmallow schemas
(and every default), :mod:`~tracker.config.paths` builds the tracking paths and
checks their cross-references, :mod:`~tracker.config.problems` gathers every
error with its dotted key path, and :mod:`~tracker.config.model` is the frozen
result the rest of the tracker reads. Nothing here imports Falcon.
"""

from tracker.config.loader import (
    DEFAULT_CONFIG,
    NAME,
    ConfigError,
    config_path,
    load_data,
    load_file,
    load_text,
)
from tracker.config.model import (
    BatchConfig,
    BrowserConfig,
    Config,
    CorsConfig,
    DeliveryConfig,
    EventIdConfig,
    FieldConfig,
    FieldFilter,
    PathConfig,
    PluginConfig,
    RateLimitConfig,
    RedirectConfig,
    RejectedConfig,
    ResponseConfig,
    ServerConfig,
    TagConfig,
    UserCookieConfig,
)

__all__ = [
    "DEFAULT_CONFIG",
    "NAME",
    "BatchConfig",
    "BrowserConfig",
    "Config",
    "ConfigError",
    "CorsConfig",
    "DeliveryConfig",
    "EventIdConfig",
    "FieldConfig",
    "FieldFilter",
    "PathConfig",
    "PluginConfig",
    "RateLimitConfig",
    "RedirectConfig",
    "RejectedConfig",
    "ResponseConfig",
    "ServerConfig",
    "TagConfig",
    "UserCookieConfig",
    "config_path",
    "load_data",
    "load_file",
    "load_text",
]
