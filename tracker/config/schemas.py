"""Marshmallow schemas of the config file, and the one home of its defaults.

Every schema rejects unknown keys (marshmallow's default), so a typo is an
error with its dotted path, never a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from tracker.adtech.signing import SCOPES

#: Field types and, for structured ones, the attributes a reference may name
#: (``price.billable``); the first attribute is what the bare name means.
FIELD_TYPES = ("string", "integer", "float", "boolean", "micros", "auction_price", "loss_reason")
STRUCTURED = {
    "auction_price": ("micros", "cpm_micros", "billable", "encrypted", "units"),
    "loss_reason": ("code", "name"),
}
#: Field types, or ``type.attribute`` pairs, that can feed a metric.
NUMERIC = frozenset(
    {"integer", "float", "micros", "auction_price.micros", "auction_price.cpm_micros"}
    | {"auction_price.units"}
    | {"loss_reason.code"}
)
SOURCES = ("query", "body", "header", "cookie", "path")
METHODS = ("GET", "POST")
RESPONSE_TYPES = ("pixel", "no_content", "json", "redirect")
DELIVERY_CLASSES = ("fast", "durable")
#: Names of paths, fields and plugin blocks.
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.-]*$")
FILTER_NAME = re.compile(r"^(dimensions|metrics|context)(\.[A-Za-z0-9_]+)?$")


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
    encryption_key = fields.String()
    integrity_key = fields.String()
    require_encrypted = fields.Boolean(load_default=False)

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
        if data.get("require_encrypted") and data.get("type") != "auction_price":
            errors["require_encrypted"] = ["Only an auction_price field takes require_encrypted."]
        keys = [k for k in ("encryption_key", "integrity_key") if data.get(k)]
        if keys and data.get("type") != "auction_price":
            errors[keys[0]] = ["Only an auction_price field takes price keys."]
        elif len(keys) == 1:
            errors[keys[0]] = ["Set both encryption_key and integrity_key, or neither."]
        if errors:
            raise ValidationError(errors)


class RedirectSchema(Schema):
    """Where a ``redirect`` response may send the browser."""

    url_field = fields.String(required=True)
    signing_keys = fields.String(load_default="")
    allowed_hosts = fields.List(fields.String(), load_default=list)
    fallback_url = fields.String()
    signature_scope = fields.String(load_default="url", validate=validate.OneOf(SCOPES))


class ResponseSchema(Schema):
    """The ``response`` block of a path."""

    type = fields.String(load_default="json", validate=validate.OneOf(RESPONSE_TYPES))
    always = fields.Boolean(load_default=False)
    redirect = fields.Nested(RedirectSchema)

    @validates_schema
    def _check(self, data, **kwargs):
        if (data.get("type") == "redirect") != ("redirect" in data):
            raise ValidationError(
                "A redirect response needs a redirect block, and only it takes one.", "redirect"
            )


class DeliverySchema(Schema):
    """The ``delivery`` block of a path."""

    mode = fields.String(
        data_key="class", load_default="fast", validate=validate.OneOf(DELIVERY_CLASSES)
    )
    timeout = fields.Float(load_default=5.0, validate=validate.Range(min=0.01, max=60))
    retry_after = fields.Integer(load_default=5, validate=validate.Range(min=1, max=3600))


class EventIdSchema(Schema):
    """Which fields make the event id deterministic."""

    fields_ = fields.List(
        fields.String(), data_key="fields", required=True, validate=validate.Length(min=1)
    )
    with_ = fields.List(fields.String(), data_key="with", load_default=list)


class BatchSchema(Schema):
    """A path that takes a JSON array of events for other paths."""

    paths = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    max_items = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10000))


class RateLimitSchema(Schema):
    """A token bucket per client, in each worker."""

    per_second = fields.Float(required=True, validate=validate.Range(min=0.001))
    burst = fields.Integer(validate=validate.Range(min=1))
    key = fields.String(
        load_default="ip",
        validate=validate.Regexp(
            r"^(ip|(query|header):[A-Za-z0-9_.-]{1,64})$",
            error="Must be ip, query:<name> or header:<name>.",
        ),
    )
    max_clients = fields.Integer(load_default=100_000, validate=validate.Range(min=1))


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
    event_type = fields.String(validate=validate.Regexp(EVENT_TYPE, error="Must match {regex}."))
    inputs = fields.Dict(
        keys=fields.String(), values=fields.Raw(), load_default=dict, data_key="fields"
    )
    dimensions = NameMap(load_default=())
    metrics = MetricMap(load_default=())
    preprocessors = fields.List(fields.String(), load_default=list)
    collectors = fields.List(fields.String(), validate=validate.Length(min=1))
    response = fields.Nested(ResponseSchema, load_default=lambda: ResponseSchema().load({}))
    max_body_bytes = fields.Integer(validate=validate.Range(min=0))
    delivery = fields.Nested(DeliverySchema, load_default=lambda: DeliverySchema().load({}))
    event_id = fields.Nested(EventIdSchema)
    user_id = fields.Boolean(load_default=False)
    device_headers = fields.Boolean(load_default=False)
    batch = fields.Nested(BatchSchema)
    rate_limit = fields.Nested(RateLimitSchema)

    @validates_schema
    def _check(self, data, **kwargs):
        if "batch" in data:
            return
        errors = {
            key: ["Missing data for required field."]
            for key in ("event_type", "collectors")
            if key not in data
        }
        if errors:
            raise ValidationError(errors)


def _network(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as ex:
        raise ValidationError("Not a valid IP network (CIDR).") from ex


class NetworkList(fields.Field):
    """CIDRs as a list, or as one comma-separated string (from an environment variable)."""

    default_error_messages = {"invalid": "Must be a list of CIDRs or a comma-separated string."}

    def _deserialize(self, value, attr, data, **kwargs):
        items = (
            [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        )
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise self.make_error("invalid")
        errors = {}
        for i, item in enumerate(items):
            try:
                _network(item)
            except ValidationError as ex:
                errors[i] = ex.messages
        if errors:
            raise ValidationError(errors)
        return tuple(items)


class UserCookieSchema(Schema):
    """The first-party user id cookie."""

    name = fields.String(load_default="tuid", validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$"))
    max_age = fields.Integer(load_default=34_128_000, validate=validate.Range(min=60))
    domain = fields.String()
    require_consent_signal = fields.Boolean(load_default=True)
    vendor_id = fields.Integer(validate=validate.Range(min=1, max=65535))


class ServerSchema(Schema):
    """The ``server`` block."""

    max_body_bytes = fields.Integer(load_default=65536, validate=validate.Range(min=0))
    max_field_length = fields.Integer(load_default=1024, validate=validate.Range(min=1))
    max_url_length = fields.Integer(load_default=4096, validate=validate.Range(min=64))
    max_header_bytes = fields.Integer(load_default=16384, validate=validate.Range(min=256))
    trusted_proxies = fields.List(fields.String(validate=_network), load_default=list)
    ad_inserters = NetworkList(load_default=())
    user_cookie = fields.Nested(UserCookieSchema, load_default=lambda: UserCookieSchema().load({}))


class FilterSchema(Schema):
    """The core's keys in a collector block: which event fields it may see."""

    allow_fields = fields.List(fields.String(validate=validate.Regexp(FILTER_NAME)))
    deny_fields = fields.List(fields.String(validate=validate.Regexp(FILTER_NAME)))

    @validates_schema
    def _check(self, data, **kwargs):
        if "allow_fields" in data and "deny_fields" in data:
            raise ValidationError("Set allow_fields or deny_fields, not both.", "deny_fields")


ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\*$")


class TagSchema(Schema):
    """Where the browser tag is served and how long caches keep its plain name."""

    route = fields.String(
        load_default="/tracker.js",
        allow_none=True,
        validate=validate.Regexp(r"^/[A-Za-z0-9._/-]*\.js$", error="Must be a path ending in .js."),
    )
    max_age = fields.Integer(load_default=86400, validate=validate.Range(min=0, max=31536000))


class CorsSchema(Schema):
    """Which origins may call which paths from a page's script."""

    allowed_origins = fields.List(
        fields.String(validate=validate.Regexp(ORIGIN, error="Must be scheme://host[:port].")),
        load_default=list,
    )
    paths = fields.List(fields.String(), load_default=list)
    credentials = fields.Boolean(load_default=True)
    max_age = fields.Integer(load_default=600, validate=validate.Range(min=0, max=86400))

    @validates_schema
    def _check(self, data, **kwargs):
        if data.get("credentials") and "*" in data.get("allowed_origins", ()):
            raise ValidationError(
                "A wildcard origin cannot be used with credentials: list the origins.",
                "allowed_origins",
            )


class BrowserSchema(Schema):
    """The ``browser`` block: the tag and CORS for the paths it posts to."""

    tag = fields.Nested(TagSchema, load_default=lambda: TagSchema().load({}))
    cors = fields.Nested(CorsSchema, load_default=lambda: CorsSchema().load({}))


class RejectedSchema(Schema):
    """The rejected-requests stream: sampled, capped copies of refused requests."""

    collectors = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    sample_rate = fields.Float(load_default=1.0, validate=validate.Range(min=0, max=1))
    max_per_second = fields.Integer(load_default=100, validate=validate.Range(min=1))
    max_value_length = fields.Integer(load_default=64, validate=validate.Range(min=0, max=1024))


class RootSchema(Schema):
    """The top level; each named block below it is checked on its own."""

    server = fields.Nested(ServerSchema, load_default=lambda: ServerSchema().load({}))
    collectors = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    preprocessors = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)
    paths = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    browser = fields.Nested(BrowserSchema, load_default=lambda: BrowserSchema().load({}))
    rejected = fields.Nested(RejectedSchema)
