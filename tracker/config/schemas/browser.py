"""The ``browser`` block: serving the tag and CORS for the paths it posts to."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

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
