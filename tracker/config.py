"""Read, validate and freeze the tracker config.

YAML -> environment expansion -> marshmallow schemas (unknown keys rejected) ->
cross-reference checks -> plugin blocks validated by each plugin's own schema ->
frozen dataclasses. Every problem is collected and reported at once, each with
the dotted path of the bad key and the value found. The reference is
``docs/config.md``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from tracker.plugins import (
    COLLECTOR_GROUP,
    PREPROCESSOR_GROUP,
    Collector,
    Plugin,
    PluginLoadError,
    Preprocessor,
    load_plugin,
)

FIELD_TYPES = ("string", "integer", "float", "boolean", "micros")
NUMERIC_TYPES = frozenset({"integer", "float", "micros"})
SOURCES = ("query", "body", "header", "cookie", "path")
METHODS = ("GET", "POST")
RESPONSE_TYPES = ("pixel", "no_content", "json")
DELIVERY_CLASSES = ("fast", "durable")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.-]*$")
ROUTE_PARAM = re.compile(r"{([^}]*)}")
DEFAULT_CONFIG = "config/tracker.yaml"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The config is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid config:\n" + "\n".join(f"  {e}" for e in errors))


# --- frozen config -------------------------------------------------------------


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


@dataclass(frozen=True)
class ResponseConfig:
    """How a path answers: ``type`` on success, and whether errors still get a pixel."""

    type: str = "json"
    always: bool = False


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
    delivery: DeliveryConfig = DeliveryConfig()


@dataclass(frozen=True)
class PluginConfig:
    """A collector or preprocessor block: its class and validated options."""

    name: str
    type: str
    cls: type[Plugin]
    options: Mapping[str, Any]

    def create(self) -> Plugin:
        """Instantiate the plugin (not yet opened)."""
        return self.cls(self.name, dict(self.options))


@dataclass(frozen=True)
class ServerConfig:
    """Limits and settings shared by all paths."""

    max_body_bytes: int = 65536
    max_field_length: int = 1024
    max_url_length: int = 4096
    max_header_bytes: int = 16384
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """The whole validated config."""

    server: ServerConfig
    collectors: Mapping[str, PluginConfig]
    preprocessors: Mapping[str, PluginConfig]
    paths: Mapping[str, PathConfig]


# --- schemas -----------------------------------------------------------------------


class StringOrList(fields.Field):
    """A string or a list of strings, loaded as a tuple."""

    default_error_messages = {"invalid": "Must be a string or a list of strings."}

    def _deserialize(self, value, attr, data, **kwargs):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise self.make_error("invalid")
        return tuple(items)


class NameMap(fields.Field):
    """A list of names (``[a, b]``) or a mapping of new name to name (``{x: a}``)."""

    default_error_messages = {"invalid": "Must be a list of field names or a mapping."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list) and all(isinstance(i, str) for i in value):
            return tuple((v, v) for v in value)
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            return tuple((str(k), v) for k, v in value.items())
        raise self.make_error("invalid")


class MetricMap(fields.Field):
    """A mapping of metric name to a field name or a numeric constant."""

    default_error_messages = {
        "invalid": "Must be a mapping of metric name to a field name or a number."
    }

    def _deserialize(self, value, attr, data, **kwargs):
        ok = isinstance(value, dict) and all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
        )
        if not ok:
            raise self.make_error("invalid")
        return tuple((str(k), v) for k, v in value.items())


class FieldSchema(Schema):
    """A field: its type, where it comes from and how it is checked."""

    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES))
    source = StringOrList(load_default=("query", "body"))
    name = fields.String(validate=validate.Length(min=1))
    required = fields.Boolean(load_default=False)
    default = fields.Raw(allow_none=True)
    min = fields.Float()
    max = fields.Float()
    min_length = fields.Integer(validate=validate.Range(min=0))
    max_length = fields.Integer(validate=validate.Range(min=1))
    pattern = fields.String()
    choices = fields.List(fields.Raw(), validate=validate.Length(min=1))

    @validates_schema
    def _check(self, data, **kwargs):
        errors = {}
        bad = [s for s in data.get("source", ()) if s not in SOURCES]
        if bad or not data.get("source"):
            errors["source"] = [f"Must be among: {', '.join(SOURCES)}."]
        if "pattern" in data:
            try:
                re.compile(data["pattern"])
            except re.error as ex:
                errors["pattern"] = [f"Not a valid regular expression: {ex}."]
        if data.get("required") and "default" in data:
            errors["default"] = ["A required field cannot have a default."]
        if errors:
            raise ValidationError(errors)


class ResponseSchema(Schema):
    """The ``response`` block of a path."""

    type = fields.String(load_default="json", validate=validate.OneOf(RESPONSE_TYPES))
    always = fields.Boolean(load_default=False)


class DeliverySchema(Schema):
    """The ``delivery`` block of a path."""

    mode = fields.String(
        data_key="class", load_default="fast", validate=validate.OneOf(DELIVERY_CLASSES)
    )
    timeout = fields.Float(load_default=5.0, validate=validate.Range(min=0.01, max=60))
    retry_after = fields.Integer(load_default=5, validate=validate.Range(min=1, max=3600))


class PathSchema(Schema):
    """A tracking path; ``fields`` are checked one by one by :class:`FieldSchema`."""

    route = fields.String(
        required=True, validate=validate.Regexp(r"^/", error="Must start with /.")
    )
    methods = fields.List(
        fields.String(validate=validate.OneOf(METHODS)),
        load_default=["GET"],
        validate=validate.Length(min=1),
    )
    event_type = fields.String(
        required=True, validate=validate.Regexp(EVENT_TYPE, error="Must match {regex}.")
    )
    inputs = fields.Dict(
        keys=fields.String(), values=fields.Raw(), load_default=dict, data_key="fields"
    )
    dimensions = NameMap(load_default=())
    metrics = MetricMap(load_default=())
    preprocessors = fields.List(fields.String(), load_default=list)
    collectors = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    response = fields.Nested(ResponseSchema, load_default=lambda: {})
    max_body_bytes = fields.Integer(validate=validate.Range(min=0))
    delivery = fields.Nested(DeliverySchema, load_default=lambda: {})


def _network(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as ex:
        raise ValidationError("Not a valid IP network (CIDR).") from ex


class ServerSchema(Schema):
    """The ``server`` block."""

    max_body_bytes = fields.Integer(load_default=65536, validate=validate.Range(min=0))
    max_field_length = fields.Integer(load_default=1024, validate=validate.Range(min=1))
    max_url_length = fields.Integer(load_default=4096, validate=validate.Range(min=64))
    max_header_bytes = fields.Integer(load_default=16384, validate=validate.Range(min=256))
    trusted_proxies = fields.List(fields.String(validate=_network), load_default=list)


class RootSchema(Schema):
    """The top level; each named block below it is checked on its own."""

    server = fields.Nested(ServerSchema, load_default=lambda: {})
    collectors = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    preprocessors = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)
    paths = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


# --- loading -----------------------------------------------------------------------


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
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"<root>: must be a mapping (found: {raw!r})"])
    data = _expand_env(raw, environ, (), errors)
    # Go on after a top-level error, with what did load, so that one run reports
    # every problem in the file.
    top, _ = _load_partial(RootSchema(), data, (), errors)
    top.setdefault("collectors", {})
    top.setdefault("preprocessors", {})
    collectors = _plugins(top["collectors"], "collectors", COLLECTOR_GROUP, Collector, errors)
    preprocessors = _plugins(
        top["preprocessors"], "preprocessors", PREPROCESSOR_GROUP, Preprocessor, errors
    )
    server_options = dict(top.get("server") or {})
    server_options["trusted_proxies"] = tuple(server_options.get("trusted_proxies", ()))
    server = ServerConfig(**server_options)
    paths: dict[str, PathConfig] = {}
    routes: dict[str, str] = {}
    for name, block in (top.get("paths") or {}).items():
        path = _path(name, block, server, top, errors)
        if path is None:
            continue
        if path.route in routes:
            errors.append(
                f"paths.{name}.route: route {path.route!r} is already used by path "
                f"{routes[path.route]!r}"
            )
        routes.setdefault(path.route, name)
        paths[name] = path
    if errors:
        raise ConfigError(errors)
    return Config(server=server, collectors=collectors, preprocessors=preprocessors, paths=paths)


def _load(schema: Schema, data: Any, prefix: tuple, errors: list[str]) -> dict | None:
    try:
        return schema.load(data if data is not None else {})
    except ValidationError as ex:
        errors.extend(_format(prefix, ex.messages, data))
        return None


def _load_partial(schema: Schema, data: Any, prefix: tuple, errors: list[str]) -> tuple[dict, bool]:
    """Like :func:`_load`, but return the keys that did load even on error."""
    try:
        return schema.load(data if data is not None else {}), True
    except ValidationError as ex:
        errors.extend(_format(prefix, ex.messages, data))
        return (ex.valid_data if isinstance(ex.valid_data, dict) else {}), False


def _format(prefix: tuple, messages: Any, data: Any) -> Iterator[str]:
    """Flatten marshmallow's nested messages into ``dotted.path: message (found: v)``."""
    for key_path, message in _flatten(messages, ()):
        if key_path and key_path[0] == "_schema":
            key_path = key_path[1:]
        found = _lookup(data, key_path)
        where = ".".join(str(p) for p in (*prefix, *key_path)) or "<root>"
        suffix = "" if found is _MISSING else f" (found: {found!r})"
        yield f"{where}: {message}{suffix}"


def _flatten(messages: Any, path: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _flatten(value, (*path, key))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            yield path, message
    elif isinstance(messages, list):
        for value in messages:
            yield from _flatten(value, path)
    else:
        yield path, str(messages)


_MISSING = object()


def _lookup(data: Any, key_path: tuple) -> Any:
    for key in key_path:
        in_dict = isinstance(data, dict) and key in data
        in_list = isinstance(data, list) and isinstance(key, int) and key < len(data)
        if not (in_dict or in_list):
            return _MISSING
        data = data[key]
    return data


def _expand_env(value: Any, environ: Mapping[str, str], path: tuple, errors: list[str]) -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in string values."""
    if isinstance(value, dict):
        return {k: _expand_env(v, environ, (*path, k), errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, environ, (*path, i), errors) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        errors.append(
            f"{'.'.join(str(p) for p in path)}: environment variable {name} is not set "
            f"(found: {value!r})"
        )
        return ""

    return ENV_REF.sub(substitute, value)


def _plugins(
    blocks: dict[str, Any], section: str, group: str, base: type[Plugin], errors: list[str]
) -> dict[str, PluginConfig]:
    result: dict[str, PluginConfig] = {}
    for name, block in blocks.items():
        where = f"{section}.{name}"
        if not NAME.match(name):
            errors.append(f"{where}: name must match {NAME.pattern} (found: {name!r})")
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"{where}.type: Missing plugin type (found: {block!r})")
            continue
        options = {k: v for k, v in block.items() if k != "type"}
        try:
            cls = load_plugin(group, block["type"], base)
        except PluginLoadError as ex:
            errors.append(f"{where}.type: {ex}")
            continue
        if cls.options_schema is None:
            loaded: dict | None = {}
            for key, value in options.items():
                errors.append(f"{where}.{key}: Unknown field. (found: {value!r})")
        else:
            loaded = _load(cls.options_schema(), options, (section, name), errors)
        if loaded is not None:
            result[name] = PluginConfig(name=name, type=block["type"], cls=cls, options=loaded)
    return result


def _path(
    name: str, block: Any, server: ServerConfig, top: dict, errors: list[str]
) -> PathConfig | None:
    where = f"paths.{name}"
    if not NAME.match(name):
        errors.append(f"{where}: name must match {NAME.pattern} (found: {name!r})")
    loaded, ok = _load_partial(PathSchema(), block, ("paths", name), errors)
    field_configs: list[FieldConfig] = []
    for field_name, spec in loaded.get("inputs", {}).items():
        field = _field(field_name, spec, server, f"{where}.fields", errors)
        if field is not None:
            field_configs.append(field)
    _check_references(where, loaded, field_configs, top, errors)
    if "route" in loaded:
        _check_route_params(where, loaded["route"], field_configs, errors)
    if not ok:
        return None
    return PathConfig(
        name=name,
        route=loaded["route"],
        methods=tuple(dict.fromkeys(loaded["methods"])),
        event_type=loaded["event_type"],
        fields=tuple(field_configs),
        dimensions=loaded["dimensions"],
        metrics=loaded["metrics"],
        preprocessors=tuple(loaded["preprocessors"]),
        collectors=tuple(loaded["collectors"]),
        response=ResponseConfig(**loaded["response"]),
        max_body_bytes=loaded.get("max_body_bytes", server.max_body_bytes),
        delivery=DeliveryConfig(**loaded["delivery"]),
    )


def _check_references(
    where: str, loaded: dict, field_configs: list[FieldConfig], top: dict, errors: list[str]
) -> None:
    """Dimensions and metrics name declared fields; plugins name configured blocks."""
    by_name = {f.name: f for f in field_configs}
    declared = set(loaded.get("inputs", ()))
    for dim, ref in loaded.get("dimensions", ()):
        if ref not in declared:
            errors.append(f"{where}.dimensions.{dim}: unknown field {ref!r}")
    for metric, ref in loaded.get("metrics", ()):
        if not isinstance(ref, str):
            continue
        if ref not in declared:
            errors.append(f"{where}.metrics.{metric}: unknown field {ref!r}")
        elif ref in by_name and by_name[ref].type not in NUMERIC_TYPES:
            errors.append(
                f"{where}.metrics.{metric}: field {ref!r} is a {by_name[ref].type}, "
                f"a metric needs one of {', '.join(sorted(NUMERIC_TYPES))}"
            )
    for section in ("preprocessors", "collectors"):
        for i, ref in enumerate(loaded.get(section, ())):
            if ref not in top[section]:
                errors.append(f"{where}.{section}.{i}: no {section[:-1]} named {ref!r}")


def _check_route_params(
    where: str, route: str, field_configs: list[FieldConfig], errors: list[str]
) -> None:
    """Every ``{param}`` of the route feeds a ``path`` field, and the reverse."""
    params = ROUTE_PARAM.findall(route)
    path_keys = {f.key for f in field_configs if "path" in f.sources}
    for param in params:
        if param not in path_keys:
            errors.append(
                f"{where}.route: route parameter {{{param}}} has no field with source 'path'"
            )
    for field in field_configs:
        if "path" in field.sources and field.key not in params:
            errors.append(
                f"{where}.fields.{field.name}.source: route {route!r} has no "
                f"parameter {{{field.key}}}"
            )


def _field(
    name: str, spec: Any, server: ServerConfig, prefix: str, errors: list[str]
) -> FieldConfig | None:
    if not NAME.match(name):
        errors.append(f"{prefix}.{name}: name must match {NAME.pattern} (found: {name!r})")
    loaded = _load(FieldSchema(), spec, (*prefix.split("."), name), errors)
    if loaded is None:
        return None
    max_length = loaded.get("max_length")
    if loaded["type"] == "string" and max_length is None:
        max_length = server.max_field_length
    return FieldConfig(
        name=name,
        type=loaded["type"],
        sources=loaded["source"],
        key=loaded.get("name", name),
        required=loaded["required"],
        default=loaded.get("default"),
        min=_number(loaded.get("min")),
        max=_number(loaded.get("max")),
        min_length=loaded.get("min_length"),
        max_length=max_length,
        pattern=loaded.get("pattern"),
        choices=tuple(loaded["choices"]) if "choices" in loaded else None,
    )


def _number(value: float | None) -> int | float | None:
    """Keep whole-number bounds as integers, so messages read ``1``, not ``1.0``."""
    return int(value) if value is not None and value.is_integer() else value
