"""Request schemas built from the config, and field extraction.

At start-up each path's field list becomes one marshmallow schema. On a
request, :func:`gather` collects the raw values from their sources, the schema
loads them, and :func:`build_event_parts` maps the result onto dimensions and
metrics. Nothing here knows HTTP: the caller passes a lookup function.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, fields, validate

from tracker.config import FieldConfig, PathConfig

#: ``lookup(source, key)`` returns the raw value, or ``None`` when absent.
Lookup = Callable[[str, str], Any]

MICROS = Decimal(1_000_000)


class Micros(fields.Field):
    """A decimal amount (``"1.25"``) loaded as integer micro-units (``1250000``).

    Money never travels as a float: the text is parsed as a :class:`Decimal`,
    bounds are checked on the decimal value, and the result is rounded half-even
    to a whole number of micro-units.
    """

    default_error_messages = {
        "invalid": "Not a valid decimal number.",
        "too_precise": "More than 6 decimal places.",
    }

    def __init__(self, *, minimum: float | None = None, maximum: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.minimum = None if minimum is None else Decimal(str(minimum))
        self.maximum = None if maximum is None else Decimal(str(maximum))

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.make_error("invalid")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation as ex:
            raise self.make_error("invalid") from ex
        if not amount.is_finite():
            raise self.make_error("invalid")
        if self.minimum is not None and amount < self.minimum:
            raise validate.ValidationError(f"Must be greater than or equal to {self.minimum}.")
        if self.maximum is not None and amount > self.maximum:
            raise validate.ValidationError(f"Must be less than or equal to {self.maximum}.")
        micros = amount * MICROS
        if micros != micros.to_integral_value():
            raise self.make_error("too_precise")
        return int(micros.to_integral_value(rounding=ROUND_HALF_EVEN))


class FiniteFloat(fields.Float):
    """A float that refuses NaN and infinities."""

    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, **kwargs)


def _marshmallow_field(spec: FieldConfig) -> fields.Field:
    validators: list = []
    if spec.type in ("integer", "float") and (spec.min is not None or spec.max is not None):
        validators.append(validate.Range(min=spec.min, max=spec.max))
    if spec.min_length is not None or spec.max_length is not None:
        validators.append(validate.Length(min=spec.min_length, max=spec.max_length))
    if spec.pattern is not None:
        validators.append(validate.Regexp(spec.pattern, error="Does not match {regex}."))
    if spec.choices is not None:
        validators.append(validate.OneOf(spec.choices))
    common: dict[str, Any] = {"required": spec.required, "validate": validators}
    if not spec.required and spec.default is not None:
        common["load_default"] = spec.default
    if spec.type == "string":
        return fields.String(**common)
    if spec.type == "integer":
        return fields.Integer(strict=False, **common)
    if spec.type == "float":
        return FiniteFloat(**common)
    if spec.type == "boolean":
        return fields.Boolean(**common)
    return Micros(minimum=spec.min, maximum=spec.max, **common)


def build_schema(path: PathConfig) -> Schema:
    """Build the marshmallow schema that validates one path's fields."""
    declared = {spec.name: _marshmallow_field(spec) for spec in path.fields}
    return Schema.from_dict(declared, name=f"{path.name.title()}Request")()


def gather(path: PathConfig, lookup: Lookup) -> dict[str, Any]:
    """Collect the raw value of each field from the first source that has it."""
    raw: dict[str, Any] = {}
    for spec in path.fields:
        for source in spec.sources:
            value = lookup(source, spec.key)
            if value is not None:
                raw[spec.name] = value
                break
    return raw


def build_event_parts(
    path: PathConfig, values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, int | float]]:
    """Map validated field values onto the event's dimensions and metrics.

    Fields without a value (optional, no default) are left out, never null.
    """
    dimensions = {dim: values[ref] for dim, ref in path.dimensions if ref in values}
    metrics: dict[str, int | float] = {}
    for metric, ref in path.metrics:
        if not isinstance(ref, str):
            metrics[metric] = ref
        elif ref in values:
            metrics[metric] = values[ref]
    return dimensions, metrics
