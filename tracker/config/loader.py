"""Read, validate and freeze the tracker config.

YAML -> environment expansion -> marshmallow schemas
(:mod:`tracker.config.schemas`, unknown keys rejected) -> plugin blocks
validated by each plugin's own schema -> paths and their cross-references
(:mod:`tracker.config.paths`) -> frozen dataclasses
(:mod:`tracker.config.model`). Every problem is collected and reported at
once, each with the dotted path of the bad key and the value found. The
reference is ``docs/config.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from tracker.config.model import (
    BrowserConfig,
    Config,
    CorsConfig,
    FieldFilter,
    PluginConfig,
    RejectedConfig,
    ServerConfig,
    TagConfig,
    UserCookieConfig,
)
from tracker.config.paths import build_paths
from tracker.config.problems import Problems
from tracker.config.schemas import NAME, BrowserSchema, FilterSchema, RootSchema, ServerSchema
from tracker.plugins import (
    COLLECTOR_GROUP,
    PREPROCESSOR_GROUP,
    Collector,
    Plugin,
    PluginLoadError,
    Preprocessor,
    load_plugin,
)

DEFAULT_CONFIG = "config/tracker.yaml"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
FILTER_KEYS = ("allow_fields", "deny_fields")


class ConfigError(Exception):
    """The config is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid config:\n" + "\n".join(f"  {e}" for e in errors))


def config_path(environ: Mapping[str, str] | None = None) -> str:
    """Return the config file to use: ``TRACKER_CONFIG`` or ``config/tracker.yaml``."""
    return (os.environ if environ is None else environ).get("TRACKER_CONFIG") or DEFAULT_CONFIG


def load_file(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML config file.

    Raises:
        ConfigError: With every problem found.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as ex:
        raise ConfigError([f"{path}: cannot read: {ex.strerror}"]) from ex
    return load_text(text, environ)


def load_text(text: str, environ: Mapping[str, str] | None = None) -> Config:
    """Validate YAML text; see :func:`load_file`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as ex:
        raise ConfigError([f"not valid YAML: {ex}"]) from ex
    return load_data(raw, os.environ if environ is None else environ)


def load_data(raw: Any, environ: Mapping[str, str]) -> Config:
    """Validate already-parsed data; see :func:`load_file`."""
    problems = Problems()
    if not isinstance(raw, dict):
        raise ConfigError([f"<root>: must be a mapping (found: {raw!r})"])
    data = _expand_env(raw, environ, (), problems)
    # Go on after a top-level error, with what did load, so that one run reports
    # every problem in the file.
    top, _ = problems.load_partial(RootSchema(), data, ())
    top.setdefault("collectors", {})
    top.setdefault("preprocessors", {})
    collectors = _plugins(top["collectors"], "collectors", COLLECTOR_GROUP, Collector, problems)
    preprocessors = _plugins(
        top["preprocessors"], "preprocessors", PREPROCESSOR_GROUP, Preprocessor, problems
    )
    server = _server(top.get("server"))
    paths = build_paths(top.get("paths") or {}, server, top, problems)
    browser = _browser(top.get("browser") or {}, paths, problems)
    rejected = _rejected(top.get("rejected"), top, problems)
    if problems:
        raise ConfigError(list(problems))
    return Config(
        server=server,
        collectors=collectors,
        preprocessors=preprocessors,
        paths=paths,
        browser=browser,
        rejected=rejected,
    )


def _browser(loaded: dict, paths: Mapping[str, Any], problems: Problems) -> BrowserConfig:
    # As for the server block, the schema's defaults fill whatever failed to load.
    defaults = BrowserSchema().load({})
    tag = {**defaults["tag"], **(loaded.get("tag") or {})}
    cors = {**defaults["cors"], **(loaded.get("cors") or {})}
    taken = {path.route: name for name, path in paths.items()}
    if tag["route"] in taken:
        problems.add(
            "browser.tag.route", f"Already the route of path {taken[tag['route']]}.", tag["route"]
        )
    for i, name in enumerate(cors["paths"]):
        if name not in paths:
            problems.add(f"browser.cors.paths.{i}", "No such path.", name)
    cors["allowed_origins"] = tuple(cors["allowed_origins"])
    cors["paths"] = tuple(cors["paths"])
    return BrowserConfig(tag=TagConfig(**tag), cors=CorsConfig(**cors))


def _rejected(loaded: dict | None, top: dict, problems: Problems) -> RejectedConfig | None:
    keys = ("collectors", "sample_rate", "max_per_second", "max_value_length")
    if loaded is None or any(key not in loaded for key in keys):
        return None  # absent, or the schema has reported the bad value
    for i, ref in enumerate(loaded["collectors"]):
        if ref not in top["collectors"]:
            problems.add(f"rejected.collectors.{i}", f"no collector named {ref!r}")
    return RejectedConfig(
        collectors=tuple(loaded["collectors"]),
        sample_rate=loaded["sample_rate"],
        max_per_second=loaded["max_per_second"],
        max_value_length=loaded["max_value_length"],
    )


def _server(loaded: dict | None) -> ServerConfig:
    # A server block with an error still yields a usable ServerConfig, so that
    # the paths are checked in the same run: the schema's defaults fill the gap.
    options = {**ServerSchema().load({}), **(loaded or {})}
    cookie = {"domain": None, "vendor_id": None, **options.pop("user_cookie")}
    cookie["keep_query_params"] = tuple(cookie.get("keep_query_params", ()))
    options["trusted_proxies"] = tuple(options["trusted_proxies"])
    return ServerConfig(**options, user_cookie=UserCookieConfig(**cookie))


def _expand_env(value: Any, environ: Mapping[str, str], path: tuple, problems: Problems) -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in string values."""
    if isinstance(value, dict):
        return {k: _expand_env(v, environ, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, environ, (*path, i), problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        where = ".".join(str(p) for p in path)
        problems.add(where, f"environment variable {name} is not set", value)
        return ""

    return ENV_REF.sub(substitute, value)


def _plugins(
    blocks: dict[str, Any], section: str, group: str, base: type[Plugin], problems: Problems
) -> dict[str, PluginConfig]:
    result: dict[str, PluginConfig] = {}
    for name, block in blocks.items():
        where = f"{section}.{name}"
        if not NAME.match(name):
            problems.add(where, f"name must match {NAME.pattern}", name)
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.add(f"{where}.type", "Missing plugin type", block)
            continue
        core = FILTER_KEYS if base is Collector else ()
        options = {k: v for k, v in block.items() if k != "type" and k not in core}
        field_filter = _filter({k: block[k] for k in core if k in block}, where, problems)
        try:
            cls = load_plugin(group, block["type"], base)
        except PluginLoadError as ex:
            problems.add(f"{where}.type", str(ex))
            continue
        if cls.options_schema is None:
            loaded: dict | None = {}
            for key, value in options.items():
                problems.add(f"{where}.{key}", "Unknown field.", value)
        else:
            loaded = problems.load(cls.options_schema(), options, (section, name))
        if loaded is not None:
            result[name] = PluginConfig(
                name=name, type=block["type"], cls=cls, options=loaded, filter=field_filter
            )
    return result


def _filter(block: dict, where: str, problems: Problems) -> FieldFilter | None:
    loaded = problems.load(FilterSchema(), block, tuple(where.split(".")))
    if not loaded:
        return None
    mode = "allow" if "allow_fields" in loaded else "deny"
    return FieldFilter(mode=mode, names=tuple(loaded[f"{mode}_fields"]))
