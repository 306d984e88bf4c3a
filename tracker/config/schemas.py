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

    type = fields.String(
        required=True,
        validate=validate.OneOf(FIELD_TYPES),
        metadata={
            "description": (
                "`string`, `integer`, `float` (NaN and infinities refused), `boolean` "
                "(`true/false/1/0/yes/no/on/off`...), `micros` (a decimal amount such as "
                '`"1.25"`, stored as the integer `1250000`; more than 6 decimal places is '
                "refused), `auction_price` (an OpenRTB clearing price) or `loss_reason` (an "
                "OpenRTB loss code): see configuration.md."
            )
        },
    )
    source = StringOrList(
        load_default=("query", "body"),
        metadata={
            "description": (
                "Where the value comes from: `query`, `body` (a JSON object, or a form when "
                "`Content-Type` is `application/x-www-form-urlencoded`), `header`, `cookie`, "
                "`path` (a `{param}` of the route). A list means the first source that has the "
                "key wins."
            )
        },
    )
    name = fields.String(
        validate=validate.Length(min=1),
        metadata={
            "description": (
                "The key in the source (query parameter, JSON key, header or cookie name, route"
                " parameter); default: the field's own name."
            )
        },
    )
    required = fields.Boolean(
        load_default=False, metadata={"description": ("A missing required field is a 400.")}
    )
    default = fields.Raw(
        allow_none=True,
        metadata={
            "description": (
                "Value when absent. A field without a value and without a default is left out "
                "of the event."
            )
        },
    )
    min = fields.Float(
        metadata={
            "description": (
                "Lower bound of an `integer`, `float` or `micros` value (for `micros`, of the "
                "decimal amount)."
            )
        }
    )
    max = fields.Float(
        metadata={
            "description": (
                "Upper bound of an `integer`, `float` or `micros` value (for `micros`, of the "
                "decimal amount)."
            )
        }
    )
    min_length = fields.Integer(
        validate=validate.Range(min=0), metadata={"description": ("Shortest value.")}
    )
    max_length = fields.Integer(
        validate=validate.Range(min=1),
        metadata={
            "description": ("Longest value; for strings the default is `server.max_field_length`.")
        },
    )
    pattern = fields.String(
        metadata={
            "description": (
                "Regular expression the value must match (Python `re.match`, so anchor the end "
                "with `$`)."
            )
        }
    )
    choices = fields.List(
        fields.Raw(),
        validate=validate.Length(min=1),
        metadata={"description": ("The value must be one of these.")},
    )
    encryption_key = fields.String(
        metadata={
            "description": (
                "`auction_price` only: the exchange's price encryption key (hex or web-safe "
                "base64), with `integrity_key`; from the environment."
            )
        }
    )
    integrity_key = fields.String(
        metadata={
            "description": (
                "`auction_price` only: the exchange's price integrity key, with "
                "`encryption_key`; from the environment."
            )
        }
    )
    require_encrypted = fields.Boolean(
        load_default=False,
        metadata={
            "description": (
                "`auction_price` only: once the keys are set, a clear-text price is refused "
                "(`AUDIT` still passes: it bills nothing), so that no one but the exchange can "
                "name a price. Without keys it has no effect."
            )
        },
    )

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

    url_field = fields.String(
        required=True, metadata={"description": ("The string field holding the landing URL.")}
    )
    signing_keys = fields.String(
        load_default="",
        metadata={
            "description": (
                "`kid:secret,kid:secret` (secrets web-safe base64, at least 16 bytes); a "
                "landing URL signed with any of them (query `kid`, `sig`, optional `exp`) is "
                "followed. Give it from an environment variable (`${TRACKER_CLICK_KEYS:-}`)."
            )
        },
    )
    allowed_hosts = fields.List(
        fields.String(),
        load_default=list,
        metadata={
            "description": (
                "Hosts followed without a signature: `example.com` exactly, `*.example.com` any"
                " subdomain. One of `signing_keys` and `allowed_hosts` must be set."
            )
        },
    )
    fallback_url = fields.String(
        metadata={
            "description": (
                "Where a refused click goes (302); without it a refused click is a 400."
            )
        }
    )
    signature_scope = fields.String(
        load_default="url",
        validate=validate.OneOf(SCOPES),
        metadata={
            "description": (
                "What a signature covers: `url`, the landing URL only; `query`, every query "
                "parameter but `sig` (the ad ids too), so no parameter can be added, removed or"
                " changed. Build such URLs with `tracker sign-url --scope query`."
            )
        },
    )


class ResponseSchema(Schema):
    """The ``response`` block of a path."""

    type = fields.String(
        load_default="json",
        validate=validate.OneOf(RESPONSE_TYPES),
        metadata={
            "description": (
                '`pixel` (1x1 transparent GIF), `no_content` (204), `json` (`{"status": '
                '"accepted", "id": "<event id>"}`) or `redirect` (302, with a `redirect` '
                "block)."
            )
        },
    )
    always = fields.Boolean(
        load_default=False,
        metadata={
            "description": (
                "For pixels: answer a rejected request with the pixel too, status 200, and the "
                "reason in the `X-Tracker-Error` header, because browsers do not read error "
                "bodies."
            )
        },
    )
    redirect = fields.Nested(
        RedirectSchema,
        metadata={
            "description": (
                "Where a `redirect` response may send the browser (below); only a redirect "
                "takes it, and it needs one."
            )
        },
    )

    @validates_schema
    def _check(self, data, **kwargs):
        if (data.get("type") == "redirect") != ("redirect" in data):
            raise ValidationError(
                "A redirect response needs a redirect block, and only it takes one.", "redirect"
            )


class DeliverySchema(Schema):
    """The ``delivery`` block of a path."""

    mode = fields.String(
        data_key="class",
        load_default="fast",
        validate=validate.OneOf(DELIVERY_CLASSES),
        metadata={
            "description": (
                "`fast` (answer at once) or `durable` (answer once every collector has the "
                "event acknowledged or fsynced to its spool; else 503). See delivery.md."
            )
        },
    )
    timeout = fields.Float(
        load_default=5.0,
        validate=validate.Range(min=0.01, max=60),
        metadata={"description": ("Seconds a `durable` request waits for its collectors.")},
    )
    retry_after = fields.Integer(
        load_default=5,
        validate=validate.Range(min=1, max=3600),
        metadata={"description": ("`Retry-After` seconds of a `durable` path's 503.")},
    )


class EventIdSchema(Schema):
    """Which fields make the event id deterministic."""

    fields_ = fields.List(
        fields.String(),
        data_key="fields",
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": (
                "When every field listed has a value, the event id is a UUID 5 of the event"
                " type and the values of `fields` then `with`; otherwise a random UUID 4."
            )
        },
    )
    with_ = fields.List(
        fields.String(),
        data_key="with",
        load_default=list,
        metadata={"description": ("Fields whose values also go into the id, when present.")},
    )


class BatchSchema(Schema):
    """A path that takes a JSON array of events for other paths."""

    paths = fields.List(
        fields.String(),
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": (
                "The paths whose events a batch may carry; each item names its path in "
                '`"event"` and carries its fields by name.'
            )
        },
    )
    max_items = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=10000),
        metadata={"description": ("Most items per batch; more is 413 `batch_too_large`.")},
    )


class RateLimitSchema(Schema):
    """A token bucket per client, in each worker."""

    per_second = fields.Float(
        required=True,
        validate=validate.Range(min=0.001),
        metadata={"description": ("Tokens per second per client.")},
    )
    burst = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": ("Bucket size; default: `per_second` rounded up.")},
    )
    key = fields.String(
        load_default="ip",
        validate=validate.Regexp(
            r"^(ip|(query|header):[A-Za-z0-9_.-]{1,64})$",
            error="Must be ip, query:<name> or header:<name>.",
        ),
        metadata={
            "description": (
                "`ip` (the address after `trusted_proxies`), or `query:<name>` / "
                "`header:<name>` (such as an exchange's `query:seat`), falling back to the "
                "address when absent."
            )
        },
    )
    max_clients = fields.Integer(
        load_default=100_000,
        validate=validate.Range(min=1),
        metadata={
            "description": ("Buckets kept per worker; the least recently seen are dropped first.")
        },
    )


class PathSchema(Schema):
    """A tracking path; ``fields`` are checked one by one by :class:`FieldSchema`."""

    route = fields.String(
        required=True,
        validate=validate.Regexp(r"^/", error="Must start with /."),
        metadata={
            "description": (
                "URL path, starting with `/`. `{param}` segments are allowed and must feed "
                "a field with `source: path`. Two paths cannot share a route."
            )
        },
    )
    methods = fields.List(
        fields.String(validate=validate.OneOf(METHODS)),
        load_default=["GET"],
        validate=validate.Length(min=1),
        metadata={
            "description": ("`GET` and/or `POST`. Other methods get 405 with an `Allow` header.")
        },
    )
    event_type = fields.String(
        validate=validate.Regexp(EVENT_TYPE, error="Must match {regex}."),
        metadata={"description": ("The event's `type`. Required, except on a batch path.")},
    )
    inputs = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        load_default=dict,
        data_key="fields",
        metadata={"description": ("Input fields by name: `paths.<name>.fields.<field>`.")},
    )
    dimensions = NameMap(
        load_default=(),
        metadata={
            "description": (
                "Which fields become dimensions: a list of field names, or a mapping "
                "`dimension_name: field_name`."
            )
        },
    )
    metrics = MetricMap(
        load_default=(),
        metadata={
            "description": (
                "Mapping `metric_name: field_name` (a numeric field) or `metric_name: <number>`"
                " (a constant, such as `impressions: 1`). Default: none."
            )
        },
    )
    preprocessors = fields.List(
        fields.String(),
        load_default=list,
        metadata={"description": ("Preprocessor names, run in order.")},
    )
    collectors = fields.List(
        fields.String(),
        validate=validate.Length(min=1),
        metadata={
            "description": (
                "Collector names that receive the event. Required, except on a batch path."
            )
        },
    )
    response = fields.Nested(
        ResponseSchema,
        load_default=lambda: ResponseSchema().load({}),
        metadata={"description": ("What the caller gets back (below).")},
    )
    max_body_bytes = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": ("Per-path body limit; default `server.max_body_bytes`.")},
    )
    delivery = fields.Nested(
        DeliverySchema,
        load_default=lambda: DeliverySchema().load({}),
        metadata={"description": ("The path's delivery class (below).")},
    )
    event_id = fields.Nested(
        EventIdSchema,
        metadata={"description": ("Deterministic event ids (below); without it ids are random.")},
    )
    user_id = fields.Boolean(
        load_default=False,
        metadata={
            "description": (
                "Set the user id cookie and the `user_id` dimension, with consent (see "
                "`server.user_cookie`). Reads the fields named `gdpr`, `gdpr_consent`, "
                "`us_privacy`, `gpp`, `gpp_sid` if the path declares them."
            )
        },
    )
    device_headers = fields.Boolean(
        load_default=False,
        metadata={
            "description": (
                "For server-side callers: `X-Device-IP` (when a valid address) and `X-Device-"
                "User-Agent` replace the caller's IP and user agent in the context."
            )
        },
    )
    batch = fields.Nested(
        BatchSchema,
        metadata={
            "description": (
                "This path takes a JSON array of items for other paths and answers per item "
                "(below). A batch path has no `fields`, `event_type` or `collectors` of its "
                "own."
            )
        },
    )
    rate_limit = fields.Nested(
        RateLimitSchema,
        metadata={
            "description": (
                "A token bucket per client in each worker (below); over it: 429 `rate_limited` "
                "with `Retry-After`. With N workers per pod a client gets up to N times the "
                "rate."
            )
        },
    )

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

    name = fields.String(
        load_default="tuid",
        validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$"),
        metadata={"description": ("Cookie name.")},
    )
    max_age = fields.Integer(
        load_default=34_128_000,
        validate=validate.Range(min=60),
        metadata={"description": ("Seconds the cookie lives (395 days by default).")},
    )
    domain = fields.String(
        metadata={"description": ("Cookie domain, when the tracker serves several subdomains.")}
    )
    require_consent_signal = fields.Boolean(
        load_default=True,
        metadata={
            "description": (
                "Without a `gdpr` signal, set no cookie. With `false`, a missing signal is "
                "treated as `gdpr=0`."
            )
        },
    )
    vendor_id = fields.Integer(
        validate=validate.Range(min=1, max=65535),
        metadata={
            "description": (
                "The operator's TCF vendor id (from the Global Vendor List). When set and GDPR "
                "applies, the TC string must also give this vendor consent, not only Purpose 1 "
                "(`gdpr_no_vendor_consent`)."
            )
        },
    )


class ServerSchema(Schema):
    """The ``server`` block."""

    max_body_bytes = fields.Integer(
        load_default=65536,
        validate=validate.Range(min=0),
        metadata={
            "description": (
                "Largest request body. A larger `Content-Length` is answered 413 before the "
                "body is read."
            )
        },
    )
    max_field_length = fields.Integer(
        load_default=1024,
        validate=validate.Range(min=1),
        metadata={"description": ("Default `max_length` of every `string` field.")},
    )
    max_url_length = fields.Integer(
        load_default=4096,
        validate=validate.Range(min=64),
        metadata={"description": ("Longest path plus query string; longer is 414.")},
    )
    max_header_bytes = fields.Integer(
        load_default=16384,
        validate=validate.Range(min=256),
        metadata={
            "description": (
                "Largest total of request header names and values; larger is 431. (meinheld "
                "itself refuses a single header line over about 8 KB with a plain 400.)"
            )
        },
    )
    trusted_proxies = fields.List(
        fields.String(validate=_network),
        load_default=list,
        metadata={
            "description": (
                "CIDRs of load balancers whose `X-Forwarded-For` is believed. The client is the"
                " right-most address in the header that is not a trusted proxy. With none, the "
                "header is ignored, so a caller cannot spoof its IP."
            )
        },
    )
    ad_inserters = NetworkList(
        load_default=(),
        metadata={
            "description": (
                "CIDRs of server-side callers (SSAI, ad servers) whose `X-Device-IP` and "
                "`X-Device-User-Agent` are believed on `device_headers` paths; a list, or one "
                "comma-separated string (the shipped config reads `TRACKER_AD_INSERTERS`)."
            )
        },
    )
    user_cookie = fields.Nested(
        UserCookieSchema,
        load_default=lambda: UserCookieSchema().load({}),
        metadata={
            "description": ("The first-party user id cookie of paths with `user_id: true` (below).")
        },
    )


class FilterSchema(Schema):
    """The core's keys in a collector block: which event fields it may see."""

    allow_fields = fields.List(
        fields.String(validate=validate.Regexp(FILTER_NAME)),
        metadata={
            "description": (
                "Only these parts of the event reach the collector: `dimensions`, `metrics`, "
                "`context` whole, or one key (`context.ip`, `dimensions.user_id`). The envelope"
                " (id, type, path, time) always does."
            )
        },
    )
    deny_fields = fields.List(
        fields.String(validate=validate.Regexp(FILTER_NAME)),
        metadata={
            "description": (
                "Everything but these. Set at most one of `allow_fields` and `deny_fields`."
            )
        },
    )

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
        metadata={
            "description": (
                "Where the tag is served (also under its content-hashed name); null serves no tag."
            )
        },
    )
    max_age = fields.Integer(
        load_default=86400,
        validate=validate.Range(min=0, max=31536000),
        metadata={
            "description": (
                "`Cache-Control` max-age, in seconds, of the tag's plain name (the hashed one "
                "is cached for a year, immutable)."
            )
        },
    )


class CorsSchema(Schema):
    """Which origins may call which paths from a page's script."""

    allowed_origins = fields.List(
        fields.String(validate=validate.Regexp(ORIGIN, error="Must be scheme://host[:port].")),
        load_default=list,
        metadata={
            "description": (
                "Origins (`scheme://host[:port]`) whose pages may call the listed paths "
                "from script; `*` any, but not with `credentials`."
            )
        },
    )
    paths = fields.List(
        fields.String(),
        load_default=list,
        metadata={
            "description": (
                "The paths (by name) that answer cross-origin requests and their preflights."
            )
        },
    )
    credentials = fields.Boolean(
        load_default=True,
        metadata={
            "description": ("Allow credentials (the user id cookie) on cross-origin requests.")
        },
    )
    max_age = fields.Integer(
        load_default=600,
        validate=validate.Range(min=0, max=86400),
        metadata={"description": ("Seconds browsers cache a preflight's answer.")},
    )

    @validates_schema
    def _check(self, data, **kwargs):
        if data.get("credentials") and "*" in data.get("allowed_origins", ()):
            raise ValidationError(
                "A wildcard origin cannot be used with credentials: list the origins.",
                "allowed_origins",
            )


class BrowserSchema(Schema):
    """The ``browser`` block: the tag and CORS for the paths it posts to."""

    tag = fields.Nested(
        TagSchema,
        load_default=lambda: TagSchema().load({}),
        metadata={"description": ("The tag's route and caching (below).")},
    )
    cors = fields.Nested(
        CorsSchema,
        load_default=lambda: CorsSchema().load({}),
        metadata={"description": ("CORS for the paths the tag posts to (below).")},
    )


class RejectedSchema(Schema):
    """The rejected-requests stream: sampled, capped copies of refused requests."""

    collectors = fields.List(
        fields.String(),
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": (
                "Collector names that receive the `rejected` events (the shipped config gives "
                "them their own Kafka collector, topic `tracker-rejected`)."
            )
        },
    )
    sample_rate = fields.Float(
        load_default=1.0,
        validate=validate.Range(min=0, max=1),
        metadata={"description": ("Probability (0 to 1) that a refusal is kept.")},
    )
    max_per_second = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1),
        metadata={
            "description": (
                "Hard cap of kept refusals per second, per worker; the rest are counted in "
                "`tracker_rejected_stream_capped_total{path}`."
            )
        },
    )
    max_value_length = fields.Integer(
        load_default=64,
        validate=validate.Range(min=0, max=1024),
        metadata={
            "description": (
                "Query values, the user agent, the referer and batch item values are cut to "
                "this many characters."
            )
        },
    )


class RootSchema(Schema):
    """The top level; each named block below it is checked on its own."""

    server = fields.Nested(
        ServerSchema,
        load_default=lambda: ServerSchema().load({}),
        metadata={"description": ("Limits shared by all paths.")},
    )
    collectors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        required=True,
        metadata={
            "description": (
                "Named collector blocks: `name: {type: <plugin>, ...options}`, each validated "
                "by its plugin (below)."
            )
        },
    )
    preprocessors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        load_default=dict,
        metadata={"description": ("Named preprocessor blocks, same shape.")},
    )
    paths = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        required=True,
        metadata={"description": ("Named tracking paths.")},
    )
    browser = fields.Nested(
        BrowserSchema,
        load_default=lambda: BrowserSchema().load({}),
        metadata={"description": ("The browser tag (docs/browser.md).")},
    )
    rejected = fields.Nested(
        RejectedSchema,
        metadata={
            "description": (
                "The rejected-requests stream (below); without it, refusals are only counted "
                "and logged."
            )
        },
    )
