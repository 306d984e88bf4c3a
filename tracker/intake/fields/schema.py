"""Request schemas built from the config, and field extraction.

At start-up each path's field list becomes one marshmallow schema. On a
request, :func:`gather` collects the raw values from their sources, the schema
loads them (through :class:`~tracker.intake.fields.checks.Loader`), and
:class:`~tracker.intake.fields.mapping.EventMapper` maps the result onto the
event id, dimensions and metrics. Nothing here knows HTTP: the caller passes a
lookup function.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from tracker.adtech import openrtb
from tracker.adtech.pricecrypto import PriceCrypto
from tracker.config.model import FieldConfig, PathConfig
from tracker.intake.fields import numbers
from tracker.intake.fields.checks import RANGED, Checks, Validated

#: ``lookup(source, key)`` returns the raw value, or ``None`` when absent.
Lookup = Callable[[str, str], Any]

#: The refusal of a text that is not a number of the field's type (see :mod:`.numbers`).
NOT_AN_INTEGER = (
    "Not a valid integer: ASCII digits, an optional leading -, no exponent or separators."
)
NOT_A_DECIMAL = (
    "Not a valid decimal number: ASCII digits, an optional leading - and fraction, "
    "no exponent or separators."
)
_MICRO = Decimal("0.000001")


class Micros(Validated, fields.Field):
    """A decimal amount (``"1.25"``) loaded as integer micro-units (``1250000``).

    Money never travels as a float: the text is read as a :class:`Decimal`
    (:func:`~tracker.intake.fields.numbers.decimal`), bounds are checked on
    the decimal value, and an amount with more than 6 decimal places is
    refused rather than rounded.
    """

    default_error_messages = {
        "invalid": NOT_A_DECIMAL,
        "too_precise": "More than 6 decimal places.",
    }

    def __init__(self, *, minimum: float | None = None, maximum: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.minimum = None if minimum is None else Decimal(str(minimum))
        self.maximum = None if maximum is None else Decimal(str(maximum))

    def _deserialize(self, value, attr, data, **kwargs):
        amount = numbers.decimal(value)
        if amount is None:
            raise self.make_error("invalid")
        if self.minimum is not None and amount < self.minimum:
            raise validate.ValidationError(f"Must be greater than or equal to {self.minimum}.")
        if self.maximum is not None and amount > self.maximum:
            raise validate.ValidationError(f"Must be less than or equal to {self.maximum}.")
        # numbers.decimal() reads at most 21 integer digits: with 6 places that is within
        # the decimal context's 28, so quantize() never fails, and it equals the amount
        # exactly when nothing past the sixth place is dropped.
        micros = amount.quantize(_MICRO)
        if micros != amount:
            raise self.make_error("too_precise")
        return int(micros.scaleb(6))


class AuctionPrice(Validated, fields.Field):
    """An OpenRTB clearing price (``${AUCTION_PRICE}``), clear or encrypted.

    Loads to :class:`tracker.adtech.openrtb.Price`; references read its attributes:
    ``micros`` (per impression, the default), ``cpm_micros``, ``billable``,
    ``encrypted``.
    """

    def __init__(
        self, *, crypto: PriceCrypto | None = None, require_encrypted: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        self.crypto = crypto
        # Only once keys are set: without them no price could ever be encrypted.
        self.require_encrypted = require_encrypted and crypto is not None

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValidationError("Not a valid price.")
        try:
            price = openrtb.parse_price(str(value), self.crypto)
        except openrtb.NoticeError as ex:
            raise ValidationError(ex.message) from None
        if self.require_encrypted and price.billable and not price.encrypted:
            raise ValidationError("Must be encrypted: this path refuses clear-text prices.")
        return price


class Integer(Validated, fields.Integer):
    """An integer field of a request, read by :func:`~tracker.intake.fields.numbers.integer`."""

    default_error_messages = {"invalid": NOT_AN_INTEGER}

    def _deserialize(self, value, attr, data, **kwargs):
        number = numbers.integer(value)
        if number is None:
            raise self.make_error("invalid")
        return number


class LossReason(Integer):
    """An OpenRTB loss reason code (``${AUCTION_LOSS}``); ``name`` reads its name."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and (macro := openrtb.unsubstituted_macro(value)):
            raise ValidationError(_macro_message(macro))
        code = super()._deserialize(value, attr, data, **kwargs)
        if code < 0:
            raise ValidationError("Must be greater than or equal to 0.")
        return code


def _macro_message(macro: str) -> str:
    return f"Contains the literal macro ${{{macro}}}: the caller did not substitute it."


def _no_macro(value: str) -> None:
    """Refuse a value that still holds an unsubstituted ``${MACRO}``."""
    macro = openrtb.unsubstituted_macro(value)
    if macro is not None:
        raise ValidationError(_macro_message(macro))


def _no_macro_unnamed(value: str) -> None:
    """Refuse a macro left in a personal field without naming it: a refusal never quotes one."""
    if openrtb.unsubstituted_macro(value) is not None:
        raise ValidationError("Contains an unsubstituted macro (not shown: a personal field).")


class FiniteFloat(Validated, fields.Float):
    """A float field: a decimal text, so never NaN, an infinity or an exponent."""

    default_error_messages = {"invalid": NOT_A_DECIMAL}

    def _deserialize(self, value, attr, data, **kwargs):
        number = numbers.floating(value)
        if number is None:
            raise self.make_error("invalid")
        return number


def _validators(spec: FieldConfig) -> list:
    no_macro = _no_macro_unnamed if spec.personal else _no_macro
    validators: list = [no_macro] if spec.type == "string" else []
    if spec.type in RANGED and (spec.min is not None or spec.max is not None):
        validators.append(validate.Range(min=spec.min, max=spec.max))
    if spec.min_length is not None or spec.max_length is not None:
        validators.append(validate.Length(min=spec.min_length, max=spec.max_length))
    if spec.pattern is not None:
        validators.append(validate.Regexp(spec.pattern, error="Does not match {regex}."))
    if spec.choices is not None:
        validators.append(validate.OneOf(spec.choices))
    return [Checks(spec, validators)] if validators else []


def _price(spec: FieldConfig, **common: Any) -> fields.Field:
    return AuctionPrice(
        crypto=spec.price_crypto, require_encrypted=spec.require_encrypted, **common
    )


class String(Validated, fields.String):
    """A string field of a request; a JSON number is not a string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not str:
            raise self.make_error("invalid")
        return value


class Boolean(Validated, fields.Boolean):
    """A boolean field of a request."""


_CONSTRUCTORS: dict[str, Callable[..., fields.Field]] = {
    "string": lambda spec, **common: String(**common),
    "integer": lambda spec, **common: Integer(**common),
    "float": lambda spec, **common: FiniteFloat(**common),
    "boolean": lambda spec, **common: Boolean(**common),
    "micros": lambda spec, **common: Micros(minimum=spec.min, maximum=spec.max, **common),
    "auction_price": _price,
    "loss_reason": lambda spec, **common: LossReason(**common),
}


def _marshmallow_field(spec: FieldConfig) -> fields.Field:
    common: dict[str, Any] = {"required": spec.required, "validate": _validators(spec)}
    if not spec.required and spec.default is not None:
        common["load_default"] = spec.default
    return _CONSTRUCTORS[spec.type](spec, **common)


def build_schema(path: PathConfig) -> Schema:
    """Build the marshmallow schema that validates one path's fields."""
    declared = {spec.name: _marshmallow_field(spec) for spec in path.fields}
    return Schema.from_dict(declared, name=f"{path.name.title()}Request")()


def gather(path: PathConfig, lookup: Lookup) -> dict[str, Any]:
    """Collect the raw value of each field from the first source that has it.

    An empty value of a non-string or a required field counts as absent:
    exchanges and players substitute the empty string for a macro they cannot
    fill, and an empty auction id would give a notice a random event id
    instead of its derived one, so exactly-once could not hold.
    """
    raw: dict[str, Any] = {}
    for spec in path.fields:
        for source in spec.sources:
            value = lookup(source, spec.key)
            if value is None or (value == "" and (spec.type != "string" or spec.required)):
                continue
            raw[spec.name] = value
            break
    return raw
