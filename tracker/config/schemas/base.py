"""What every config schema shares: the vocabularies, names and field types."""

from __future__ import annotations

import ipaddress
import re

from marshmallow import ValidationError, fields

#: Field types and, for structured ones, the attributes a reference may name
#: (``price.billable``); the first attribute is what the bare name means.
FIELD_TYPES = ("string", "integer", "float", "boolean", "micros", "auction_price", "loss_reason")
STRUCTURED = {
    "auction_price": ("micros", "cpm_micros", "billable", "encrypted", "units", "token"),
    "loss_reason": ("code", "name"),
}
#: Field types, or ``type.attribute`` pairs, that can feed a metric.
NUMERIC = frozenset(
    {"integer", "float", "micros", "auction_price.micros", "auction_price.cpm_micros"}
    | {"auction_price.units"}
    | {"loss_reason.code"}
)
#: The largest integer every JSON reader holds exactly (a double's 53-bit mantissa).
NUMBER_LIMIT = 2**53 - 1
#: The widest ``min`` and ``max`` of each numeric field type, and their defaults: no
#: number a caller sends is unbounded, so none can overflow a float downstream (a
#: ledger, a late-notice check). For ``micros``, a round amount whose micro-units
#: (9 * 10**15) stay under ``NUMBER_LIMIT``.
TYPE_BOUNDS = {
    "integer": (-float(NUMBER_LIMIT), float(NUMBER_LIMIT)),
    "float": (-float(NUMBER_LIMIT), float(NUMBER_LIMIT)),
    "micros": (-9e9, 9e9),
    "loss_reason": (0.0, float(NUMBER_LIMIT)),
}
SOURCES = ("query", "body", "header", "cookie", "path")
#: What a field's ``personal`` attribute may say (docs/rejected.md, docs/browser.md).
PERSONAL = ("url", "identifier", "consent")
#: Fields the consent decision reads as consent strings: ``personal: consent`` unless marked.
CONSENT_FIELDS = ("gdpr_consent", "us_privacy", "gpp")
#: Field types whose refusals may quote the value (a price, a loss code): never personal.
QUOTING_TYPES = ("auction_price", "loss_reason")
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


def check_network(value: str) -> None:
    """an IP network in CIDR notation

    The lower-case first line is the rule docs/config.md prints.
    """
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
                check_network(item)
            except ValidationError as ex:
                errors[i] = ex.messages
        if errors:
            raise ValidationError(errors)
        return tuple(items)
