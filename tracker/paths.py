"""Build the configured tracking paths and check their cross-references."""

from __future__ import annotations

import re
from typing import Any

from tracker import openrtb, signing
from tracker.model import (
    BatchConfig,
    DeliveryConfig,
    EventIdConfig,
    FieldConfig,
    PathConfig,
    RedirectConfig,
    ResponseConfig,
    ServerConfig,
)
from tracker.problems import Problems
from tracker.schemas import NUMERIC, STRUCTURED, FieldSchema, PathSchema

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ROUTE_PARAM = re.compile(r"{([^}]*)}")


def build_paths(
    blocks: dict[str, Any], server: ServerConfig, top: dict, problems: Problems
) -> dict[str, PathConfig]:
    """Build every path; record each problem and skip the paths that have one."""
    paths: dict[str, PathConfig] = {}
    routes: dict[str, str] = {}
    for name, block in blocks.items():
        path = _path(name, block, server, top, problems)
        if path is None:
            continue
        if path.route in routes:
            problems.add(
                f"paths.{name}.route",
                f"route {path.route!r} is already used by path {routes[path.route]!r}",
            )
        routes.setdefault(path.route, name)
        paths[name] = path
    for name, path in paths.items():
        if path.batch is not None:
            _check_batch(name, path.batch, blocks, problems)
    return paths


def _path(
    name: str, block: Any, server: ServerConfig, top: dict, problems: Problems
) -> PathConfig | None:
    where = f"paths.{name}"
    if not NAME.match(name):
        problems.add(where, f"name must match {NAME.pattern}", name)
    loaded, ok = problems.load_partial(PathSchema(), block, ("paths", name))
    fields: list[FieldConfig] = []
    for field_name, spec in loaded.get("inputs", {}).items():
        field = _field(field_name, spec, server, f"{where}.fields", problems)
        if field is not None:
            fields.append(field)
    by_name = {f.name: f for f in fields}
    declared = set(loaded.get("inputs", ()))
    _check_mappings(where, loaded, by_name, declared, problems)
    _check_plugins(where, loaded, top, problems)
    if "route" in loaded:
        _check_route_params(where, loaded["route"], fields, problems)
    event_id = _event_id(where, loaded.get("event_id"), declared, problems)
    response = _response(where, loaded.get("response") or {}, by_name, problems)
    if not ok or response is None:
        return None
    batch = loaded.get("batch")
    return PathConfig(
        name=name,
        route=loaded["route"],
        methods=tuple(dict.fromkeys(loaded["methods"])),
        event_type=loaded.get("event_type", "batch"),
        fields=tuple(fields),
        dimensions=loaded["dimensions"],
        metrics=loaded["metrics"],
        preprocessors=tuple(loaded["preprocessors"]),
        collectors=tuple(loaded.get("collectors", ())),
        response=response,
        max_body_bytes=loaded.get("max_body_bytes", server.max_body_bytes),
        delivery=DeliveryConfig(**loaded["delivery"]),
        event_id=event_id,
        user_id=loaded["user_id"],
        device_headers=loaded["device_headers"],
        batch=BatchConfig(tuple(batch["paths"]), batch["max_items"]) if batch else None,
    )


def _reference_type(ref: str, by_name: dict[str, FieldConfig]) -> str | None:
    """Return ``type`` or ``type.attribute`` for a field reference, or None if unknown."""
    field_name, _, attr = ref.partition(".")
    field = by_name.get(field_name)
    if field is None:
        return None
    attrs = STRUCTURED.get(field.type, ())
    if not attr:
        return f"{field.type}.{attrs[0]}" if attrs else field.type
    return f"{field.type}.{attr}" if attr in attrs else None


def _check_mappings(
    where: str, loaded: dict, by_name: dict, declared: set[str], problems: Problems
) -> None:
    """Dimensions and metrics name declared fields (or their attributes)."""
    for dim, ref in loaded.get("dimensions", ()):
        if ref.partition(".")[0] not in declared:
            problems.add(f"{where}.dimensions.{dim}", f"unknown field {ref!r}")
        elif ref.partition(".")[0] in by_name and _reference_type(ref, by_name) is None:
            problems.add(f"{where}.dimensions.{dim}", f"unknown attribute in {ref!r}")
    for metric, ref in loaded.get("metrics", ()):
        if not isinstance(ref, str):
            continue
        kind = _reference_type(ref, by_name)
        if ref.partition(".")[0] not in declared:
            problems.add(f"{where}.metrics.{metric}", f"unknown field {ref!r}")
        elif ref.partition(".")[0] in by_name and kind not in NUMERIC:
            problems.add(
                f"{where}.metrics.{metric}",
                f"{ref!r} is a {kind or 'unknown attribute'}, a metric needs one of "
                f"{', '.join(sorted(NUMERIC))}",
            )


def _check_plugins(where: str, loaded: dict, top: dict, problems: Problems) -> None:
    for section in ("preprocessors", "collectors"):
        for i, ref in enumerate(loaded.get(section, ())):
            if ref not in top[section]:
                problems.add(f"{where}.{section}.{i}", f"no {section[:-1]} named {ref!r}")


def _check_route_params(
    where: str, route: str, fields: list[FieldConfig], problems: Problems
) -> None:
    """Every ``{param}`` of the route feeds a ``path`` field, and the reverse."""
    params = ROUTE_PARAM.findall(route)
    path_keys = {f.key for f in fields if "path" in f.sources}
    for param in params:
        if param not in path_keys:
            problems.add(
                f"{where}.route", f"route parameter {{{param}}} has no field with source 'path'"
            )
    for field in fields:
        if "path" in field.sources and field.key not in params:
            problems.add(
                f"{where}.fields.{field.name}.source",
                f"route {route!r} has no parameter {{{field.key}}}",
            )


def _event_id(
    where: str, loaded: dict | None, declared: set[str], problems: Problems
) -> EventIdConfig | None:
    if not loaded:
        return None
    for key, names in (("fields", loaded["fields_"]), ("with", loaded["with_"])):
        for i, ref in enumerate(names):
            if ref not in declared:
                problems.add(f"{where}.event_id.{key}.{i}", f"unknown field {ref!r}")
    return EventIdConfig(fields=tuple(loaded["fields_"]), with_=tuple(loaded["with_"]))


def _response(
    where: str, loaded: dict, by_name: dict[str, FieldConfig], problems: Problems
) -> ResponseConfig | None:
    redirect = loaded.get("redirect")
    if redirect is None:
        return ResponseConfig(type=loaded.get("type", "json"), always=loaded.get("always", False))
    at = f"{where}.response.redirect"
    ok = True
    field = by_name.get(redirect["url_field"])
    if field is None or field.type != "string":
        problems.add(f"{at}.url_field", "must name a string field", redirect["url_field"])
        ok = False
    if redirect["signing_keys"]:
        try:
            signing.parse_keys(redirect["signing_keys"])
        except ValueError as ex:
            problems.add(f"{at}.signing_keys", str(ex))
            ok = False
    try:
        signing.compile_allow_list(redirect["allowed_hosts"])
    except ValueError as ex:
        problems.add(f"{at}.allowed_hosts", str(ex), redirect["allowed_hosts"])
        ok = False
    if "fallback_url" in redirect:
        try:
            signing.check_landing_url(redirect["fallback_url"])
        except signing.UnsafeUrl as ex:
            problems.add(f"{at}.fallback_url", str(ex), redirect["fallback_url"])
            ok = False
    if not redirect["signing_keys"] and not redirect["allowed_hosts"]:
        problems.add(at, "set signing_keys or allowed_hosts, or no click can ever redirect")
        ok = False
    if not ok:
        return None
    return ResponseConfig(
        type="redirect",
        always=loaded.get("always", False),
        redirect=RedirectConfig(
            url_field=redirect["url_field"],
            signing_keys=redirect["signing_keys"],
            allowed_hosts=tuple(redirect["allowed_hosts"]),
            fallback_url=redirect.get("fallback_url"),
        ),
    )


def _check_batch(name: str, batch: BatchConfig, blocks: dict, problems: Problems) -> None:
    for i, ref in enumerate(batch.paths):
        target = blocks.get(ref)
        if target is None:
            problems.add(f"paths.{name}.batch.paths.{i}", f"no path named {ref!r}")
        elif isinstance(target, dict) and "batch" in target:
            problems.add(f"paths.{name}.batch.paths.{i}", f"path {ref!r} is itself a batch")


def _field(
    name: str, spec: Any, server: ServerConfig, prefix: str, problems: Problems
) -> FieldConfig | None:
    if not NAME.match(name):
        problems.add(f"{prefix}.{name}", f"name must match {NAME.pattern}", name)
    loaded = problems.load(FieldSchema(), spec, (*prefix.split("."), name))
    if loaded is None:
        return None
    max_length = loaded.get("max_length")
    if loaded["type"] == "string" and max_length is None:
        max_length = server.max_field_length
    keys = None
    if loaded.get("encryption_key") and loaded.get("integrity_key"):
        keys = (loaded["encryption_key"], loaded["integrity_key"])
        try:
            openrtb.PriceCrypto.from_config(*keys)
        except ValueError as ex:
            problems.add(f"{prefix}.{name}.encryption_key", str(ex))
            return None
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
        price_keys=keys,
    )


def _number(value: float | None) -> int | float | None:
    """Keep whole-number bounds as integers, so messages read ``1``, not ``1.0``."""
    return int(value) if value is not None and value.is_integer() else value
