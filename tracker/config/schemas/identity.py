"""The ``event_id`` block of a path: which fields make two requests the same event."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


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
                " type and the values of `fields` then `with` (docs/event.md); otherwise "
                "`fallback` decides."
            )
        },
    )
    with_ = fields.List(
        fields.String(),
        data_key="with",
        load_default=list,
        metadata={
            "description": (
                "Fields whose values also go into the id; an absent one counts as empty."
            )
        },
    )
    extra = fields.List(
        fields.String(),
        load_default=list,
        metadata={
            "description": (
                "Fields that also distinguish events, each only when present (a VAST "
                "playhead): adding one changes no id of an event without it."
            )
        },
    )
    extra_when = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Raw(), validate=validate.Length(min=1)),
        load_default=dict,
        metadata={
            "description": (
                "Field and values: `extra` counts only for events whose field has one of "
                "them (`{vast_event: [pause, resume]}`: a pause's playhead, not a midpoint's)."
            )
        },
    )
    fallback = fields.List(
        fields.String(),
        load_default=list,
        metadata={
            "description": (
                "When a field of `fields` is missing and every one of these is present, the"
                " id is still derived, from every present value; otherwise a random UUID 4."
            )
        },
    )
