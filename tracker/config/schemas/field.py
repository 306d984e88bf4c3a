"""A tracking path's input field: its type, where it comes from and how it is checked."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from tracker.config.schemas.base import (
    CONSENT_FIELDS,
    FIELD_TYPES,
    PERSONAL,
    QUOTING_TYPES,
    SOURCES,
    TYPE_BOUNDS,
    StringOrList,
)


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
                "Lower bound of an `integer`, `float`, `micros` or `loss_reason` value (for "
                "`micros`, of the decimal amount). Default, and the lowest allowed: "
                "-9007199254740991 (-(2^53 - 1)) for `integer` and `float`, -9000000000 for "
                "`micros`, 0 for `loss_reason`."
            )
        }
    )
    max = fields.Float(
        metadata={
            "description": (
                "Upper bound of an `integer`, `float`, `micros` or `loss_reason` value (for "
                "`micros`, of the decimal amount). Default, and the highest allowed: "
                "9007199254740991 (2^53 - 1, the largest integer every JSON reader holds "
                "exactly) for `integer`, `float` and `loss_reason`, 9000000000 for `micros`."
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
    description = fields.String(
        validate=validate.Length(min=1, max=500),
        metadata={
            "description": (
                "What the value means and looks like, for callers: the API document "
                "(`/openapi.json`) shows it with the field."
            )
        },
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

    personal = fields.String(
        validate=validate.OneOf(PERSONAL),
        metadata={
            "description": (
                "What personal data the value is, so that no path, shipped or added, lets it "
                "out: `url` (a page or link URL: its query, fragment and user part never reach "
                "the rejected-requests stream, and are stored only with consent, but for "
                "`server.user_cookie.keep_query_params`), `identifier` (a person's or device's "
                "id, such as a visitor id: never in the rejected-requests stream, stored only "
                "when the request may store an identifier), `consent` (a consent string: "
                "stored in the event, never in the rejected-requests stream). A refusal never "
                "quotes a personal field's value. Fields named "
                f"{', '.join(f'`{n}`' for n in CONSENT_FIELDS)} are `consent` unless marked "
                "otherwise. Not for `auction_price` or `loss_reason`, whose refusals quote the "
                "value. See rejected.md and browser.md."
            )
        },
    )

    @validates_schema
    def _check(self, data, **kwargs):
        errors = _personal_errors(data)
        bad = [s for s in data.get("source", ()) if s not in SOURCES]
        if bad or not data.get("source"):
            errors["source"] = [f"Must be among: {', '.join(SOURCES)}."]
        if "pattern" in data:
            try:
                re.compile(data["pattern"])
            except re.error as ex:
                errors["pattern"] = [f"Not a valid regular expression: {ex}."]
        errors.update(_bound_errors(data))
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


def _personal_errors(data: dict) -> dict[str, list[str]]:
    kind, type_ = data.get("personal"), data.get("type")
    if kind == "url" and type_ != "string":
        return {"personal": ["Only a string field can be a url."]}
    if kind and type_ in QUOTING_TYPES:
        return {"personal": [f"A {type_} field cannot be personal: its refusals quote the value."]}
    return {}


def _bound_errors(data: dict) -> dict[str, list[str]]:
    """Refuse a ``min`` or ``max`` outside the bounds of the field's type (``TYPE_BOUNDS``)."""
    low, high = TYPE_BOUNDS.get(data.get("type"), (None, None))
    if low is None:
        return {}
    message = f"Must be from {low:.0f} to {high:.0f} for type {data['type']}."
    return {k: [message] for k in ("min", "max") if k in data and not low <= data[k] <= high}
