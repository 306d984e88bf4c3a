"""The cheap way through marshmallow for a request's fields.

marshmallow stays the validator the config builds
(:func:`tracker.intake.fields.schema.build_schema`); this module removes what
it costs per request beyond the checks themselves.
Measured on ``/imp`` with every ad parameter, ``Schema.load`` took about 45 us,
of which under 20 us were the fields' own work: the rest was the schema's
generic machinery (a closure and an error store per field, an ``And`` built
for every value, the unknown-key scan). Three pieces, each exact:

- :class:`Checks`: a field's validators tested inline for the valid value;
  a value that breaks one goes through the validators themselves.
- :class:`Validated`: a field that runs its one :class:`Checks` without an
  ``And`` around it.
- :class:`Loader`: the fields called in turn, their errors gathered as
  ``Schema.load`` gathers them, or only the first one (``server.field_errors``).
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, validate
from marshmallow.utils import missing

from tracker.adtech import openrtb
from tracker.config.model import FieldConfig

#: The field types whose ``min`` and ``max`` bound the value.
RANGED = frozenset(("integer", "float", "loss_reason"))


class Checks(validate.Validator):
    """A field's validators, with one inline pass for a value that meets them all.

    marshmallow calls each validator in turn, and nearly every value passes
    them all. The same rules (no macro, range, length, pattern, choices) are
    tested here in one call; only a value that breaks one goes through the
    validators themselves, which phrase every error exactly as before.
    """

    def __init__(self, spec: FieldConfig, validators: list) -> None:
        self.validators = validate.And(*validators)
        self.macro = openrtb.unsubstituted_macro if spec.type == "string" else None
        ranged = spec.type in RANGED
        self.minimum = spec.min if ranged else None
        self.maximum = spec.max if ranged else None
        self.min_length = spec.min_length
        self.max_length = spec.max_length
        self.match = re.compile(spec.pattern).match if spec.pattern is not None else None
        self.choices = spec.choices

    def __call__(self, value: Any) -> Any:
        """Return ``value`` if it passes, else raise the validators' own errors."""
        if self._passes(value):
            return value
        return self.validators(value)

    def _passes(self, value: Any) -> bool:
        # The cheap comparisons first: an over-long value fails before any scan of it.
        if self.minimum is not None and value < self.minimum:
            return False
        if self.maximum is not None and value > self.maximum:
            return False
        if self.min_length is not None and len(value) < self.min_length:
            return False
        if self.max_length is not None and len(value) > self.max_length:
            return False
        if self.macro is not None and self.macro(value) is not None:
            return False
        if self.match is not None and self.match(value) is None:
            return False
        return self.choices is None or value in self.choices


class Validated:
    """Mixin for a marshmallow field: run its validators without an ``And`` per value.

    ``Field.deserialize`` validates through the protected ``Field._validate``,
    which builds ``And(*self.validators)`` for every value, even for a field
    without validators; marshmallow (4.4) offers no public way around it
    (``validate=`` and ``post_load`` both still pass through it). The request
    fields carry at most one validator, a :class:`Checks`, whose errors are
    already those ``And`` would raise, so this overrides that one method, on
    purpose: on ``/imp`` with every ad parameter the loader takes about 17 us
    with it and 22 us without (12 fields, 0.4 us each). ``tests/test_validation.py``
    checks every answer against stock marshmallow's. Should marshmallow stop
    calling ``_validate``, its own ``And`` runs the same validators: slower,
    never wrong.
    """

    validators: list

    def _validate(self, value: Any) -> None:
        for validator in self.validators:
            validator(value)


class Loader:
    """Load a request's raw values with a path's marshmallow schema.

    The result is ``schema.load(raw)``'s: each field deserialises its raw
    value or ``missing`` (so defaults and ``required`` apply as in the
    schema), and what is not ``missing`` is kept. On the first field that
    fails, a ``fail_fast`` loader raises its error alone (a refusal costs no
    more checks); otherwise the remaining fields are checked too and every
    error is raised together, in field order, as the schema raises them. A
    key the schema does not declare hands the request to ``schema.load``.
    """

    def __init__(self, schema: Schema, fail_fast: bool = False) -> None:
        self.schema = schema
        self.fail_fast = fail_fast
        self.fields = tuple(
            (name, field, not field.required and field.load_default is missing)
            for name, field in schema.load_fields.items()
        )
        self.names = frozenset(schema.load_fields)

    def load(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Return the validated values of ``raw``, or raise ``ValidationError``."""
        if not self.names.issuperset(raw):
            return self.schema.load(raw)
        values: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for name, field, optional in self.fields:
            raw_value = raw.get(name, missing)
            if raw_value is missing and optional:
                continue  # what deserialize() returns for it: missing, dropped below
            try:
                value = field.deserialize(raw_value, name, raw)
            except ValidationError as ex:
                errors[name] = ex.messages
                if self.fail_fast:
                    break
                continue
            if value is not missing:
                values[name] = value
        if errors:
            raise ValidationError(errors, data=raw, valid_data=values)
        return values
