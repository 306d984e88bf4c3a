"""The ``server`` block, the core's keys in collector blocks, and the rejected-requests stream."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from tracker.config.schemas.base import FILTER_NAME, NetworkList, check_network


class UserCookieSchema(Schema):
    """The first-party user id cookie, and when any identifier may be stored."""

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
                "Without a `gdpr` signal (absent, empty, not `0`/`1`), the request may store no"
                " identifier: no cookie, no `user_id`, no `personal: identifier` field, no URL "
                "query. With `false`, a missing signal is treated as `gdpr=0` (GDPR does not "
                "apply); US opt-outs still refuse."
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
    keep_query_params = fields.List(
        fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_.-]+\*?$")),
        load_default=list,
        metadata={
            "description": (
                "Query parameters that `personal: url` fields keep when the request may not "
                "store an identifier (every other parameter, and the fragment, is dropped); a "
                "trailing `*` matches a prefix (`utm_*`)."
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
                "itself refuses a single header field over 8 KB with its own plain-text 431.)"
            )
        },
    )
    field_errors = fields.String(
        load_default="first",
        validate=validate.OneOf(["first", "all"]),
        metadata={
            "description": (
                "What a refusal for invalid fields names. `first`: the first field that failed, in"
                " the path's field order, without checking the rest (the cheap answer for the "
                "open internet: a refusal then costs a fifth to a quarter less than with `all`). "
                "`all`:"
                " every field that failed (handy while integrating). The rejected-requests "
                "stream records what the answer said."
            )
        },
    )
    trusted_proxies = fields.List(
        fields.String(validate=check_network),
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
            "description": (
                "The first-party user id cookie of paths with `user_id: true`, and the consent "
                "rules of every path with `user_id` or `personal` identifier or url fields "
                "(below, and browser.md)."
            )
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
