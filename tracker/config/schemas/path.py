"""A tracking path: its route, methods, mappings, response, delivery and limits."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from tracker.adtech.signing import SCOPES
from tracker.config.schemas.base import (
    DELIVERY_CLASSES,
    EVENT_TYPE,
    METHODS,
    RESPONSE_TYPES,
    MetricMap,
    NameMap,
)
from tracker.config.schemas.identity import EventIdSchema


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
