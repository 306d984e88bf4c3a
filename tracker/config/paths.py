"""Build the configured tracking paths and check their cross-references."""

from __future__ import annotations

import math
import re
from typing import Any

from tracker.adtech import landing, signing
from tracker.adtech.pricecrypto import PriceCrypto
from tracker.config.model import (
    BatchConfig,
    DeliveryConfig,
    EventIdConfig,
    FieldConfig,
    PathConfig,
    RateLimitConfig,
    RedirectConfig,
    ResponseConfig,
    ServerConfig,
)
from tracker.config.problems import Problems
from tracker.config.schemas import (
    CONSENT_FIELDS,
    NAME,
    NUMERIC,
    STRUCTURED,
    FieldSchema,
    PathSchema,
)
from tracker.config.schemas.base import TYPE_BOUNDS

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
    response = _response(where, loaded.get("response"), by_name, problems)
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
        batch=BatchConfig(paths=tuple(batch["paths"]), max_items=batch["max_items"])
        if batch
        else None,
        rate_limit=_rate_limit(loaded.get("rate_limit")),
    )


def _rate_limit(loaded: dict | None) -> RateLimitConfig | None:
    if loaded is None:
        return None
    burst = loaded.get("burst", max(1, math.ceil(loaded["per_second"])))
    return RateLimitConfig(
        per_second=loaded["per_second"],
        burst=burst,
        key=loaded["key"],
        max_clients=loaded["max_clients"],
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
    # A lookup after anonymisation would locate the /24, not the visitor.
    types = [
        (top["preprocessors"].get(ref) or {}).get("type") for ref in loaded.get("preprocessors", ())
    ]
    if "geoip" in types and "ip_anonymise" in types[: types.index("geoip")]:
        problems.add(
            f"{where}.preprocessors.{types.index('geoip')}",
            "a geoip preprocessor must come before ip_anonymise: it needs the full address",
        )


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


#: The keys of an ``event_id`` block, in :class:`EventIdConfig`'s order.
_ID_KEYS = ("fields", "with", "extra", "fallback")


def _event_id(
    where: str, loaded: dict | None, declared: set[str], problems: Problems
) -> EventIdConfig | None:
    if not loaded:
        return None
    lists = {key: loaded[key + "_" if key in ("fields", "with") else key] for key in _ID_KEYS}
    for key, names in lists.items():
        for i, ref in enumerate(names):
            if ref not in declared:
                problems.add(f"{where}.event_id.{key}.{i}", f"unknown field {ref!r}")
    when = loaded.get("extra_when") or {}
    for ref in when:
        if ref not in declared:
            problems.add(f"{where}.event_id.extra_when.{ref}", f"unknown field {ref!r}")
    return EventIdConfig(
        *(tuple(lists[key]) for key in _ID_KEYS),
        extra_when=tuple((ref, frozenset(map(str, values))) for ref, values in when.items()),
    )


def _response(
    where: str, loaded: dict | None, by_name: dict[str, FieldConfig], problems: Problems
) -> ResponseConfig | None:
    if loaded is None:
        return None
    redirect = None
    if "redirect" in loaded:
        redirect = _redirect(f"{where}.response.redirect", loaded["redirect"], by_name, problems)
        if redirect is None:
            return None
    if "type" not in loaded or "always" not in loaded:
        return None  # the schema has reported the bad value
    return ResponseConfig(type=loaded["type"], always=loaded["always"], redirect=redirect)


def _redirect(
    at: str, block: dict, by_name: dict[str, FieldConfig], problems: Problems
) -> RedirectConfig | None:
    """Check a redirect block; its signing keys are parsed here, once."""
    before = len(problems)
    field = by_name.get(block["url_field"])
    if field is None or field.type != "string":
        problems.add(f"{at}.url_field", "must name a string field", block["url_field"])
    keys: dict[str, bytes] = {}
    if block["signing_keys"]:
        try:
            keys = signing.parse_keys(block["signing_keys"])
        except ValueError as ex:
            problems.add(f"{at}.signing_keys", str(ex))
    try:
        landing.compile_allow_list(block["allowed_hosts"])
    except ValueError as ex:
        problems.add(f"{at}.allowed_hosts", str(ex), block["allowed_hosts"])
    if "fallback_url" in block:
        try:
            landing.check_landing_url(block["fallback_url"])
        except landing.UnsafeUrl as ex:
            problems.add(f"{at}.fallback_url", str(ex), block["fallback_url"])
    if not block["signing_keys"] and not block["allowed_hosts"]:
        problems.add(at, "set signing_keys or allowed_hosts, or no click can ever redirect")
    if len(problems) > before:
        return None
    return RedirectConfig(
        url_field=block["url_field"],
        signing_keys=keys,
        allowed_hosts=tuple(block["allowed_hosts"]),
        fallback_url=block.get("fallback_url"),
        signature_scope=block["signature_scope"],
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
    # Every numeric type is bounded, by the config or by its type (TYPE_BOUNDS).
    low, high = TYPE_BOUNDS.get(loaded["type"], (None, None))
    crypto = None
    if loaded.get("encryption_key") and loaded.get("integrity_key"):
        try:
            crypto = PriceCrypto.from_config(loaded["encryption_key"], loaded["integrity_key"])
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
        min=_number(loaded.get("min", low)),
        max=_number(loaded.get("max", high)),
        min_length=loaded.get("min_length"),
        max_length=max_length,
        pattern=loaded.get("pattern"),
        choices=tuple(loaded["choices"]) if "choices" in loaded else None,
        price_crypto=crypto,
        require_encrypted=loaded["require_encrypted"],
        # The consent decision reads these names: their strings never leave unmarked.
        personal=loaded.get("personal") or ("consent" if name in CONSENT_FIELDS else None),
        description=loaded.get("description"),
    )


def _number(value: float | None) -> int | float | None:
    """Keep whole-number bounds as integers, so messages read ``1``, not ``1.0``."""
    return int(value) if value is not None and value.is_integer() else value
