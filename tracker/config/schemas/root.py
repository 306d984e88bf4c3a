"""The top level of the config file; each named block below it is checked on its own."""

from __future__ import annotations

from marshmallow import Schema, fields

from tracker.config.schemas.browser import BrowserSchema
from tracker.config.schemas.server import RejectedSchema, ServerSchema


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
