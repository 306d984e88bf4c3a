"""One reading of a number, whatever source it came from: query, form or JSON.

A number field takes text of one shape only, the same in every source:

- an integer is ASCII digits with an optional leading ``-`` (``12``, ``-3``);
- a decimal (``float`` and ``micros`` fields) may add a fraction of ASCII
  digits (``2.5``, ``-0.25``).

Nothing else: no ``+``, no exponent (``1e3``, ``1E2``), no separators
(``1_0``, ``1,000``), no surrounding spaces, no bare or trailing point, no
``NaN`` or ``Infinity``, no digits of other scripts (``\u0661\u0660``), which
Python's ``int()``, ``float()`` and ``Decimal()`` would all take. A JSON body
keeps each number's text (:func:`loads`), so ``"quantity": 1.9`` is the
text ``1.9`` (not an integer) and ``"price": 1e3`` is ``1e3`` (an exponent):
refused as they would be in a query. A JSON integer is already exact and is
taken as is.

A text with more than :data:`MAX_DIGITS` digits before its point reads as
``10 ** MAX_DIGITS`` (with its sign): beyond every field's bounds, so it gets
the field's range error, without converting thousands of digits.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?([0-9]+)(?:\.[0-9]+)?")
#: Integer digits past which a text is only known to be out of range.
MAX_DIGITS = 20
_HUGE = "1" + "0" * MAX_DIGITS


class NumberText(str):
    """The text of a JSON number with a fraction or an exponent, exactly as sent.

    A ``str``, so that a number field reads it as it reads a query value; a
    string field refuses it, as it refuses any JSON number.
    """

    __slots__ = ()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes) -> Any:
    """Parse a JSON body, keeping the text of each non-integer number.

    ``NaN`` and ``Infinity``, which Python's parser takes, are not JSON and
    raise ``ValueError`` like any other broken body.
    """
    return json.loads(data, parse_float=NumberText, parse_constant=_no_constants)


def integer(value: Any) -> int | None:
    """Return the integer ``value`` spells (text or a JSON integer), or None if it spells none."""
    if type(value) is int:
        return value
    if not isinstance(value, str) or _INTEGER.fullmatch(value) is None:
        return None
    return int(_bounded(value, value.lstrip("-")))


def decimal(value: Any) -> Decimal | None:
    """Return the decimal ``value`` spells (text or a JSON integer), or None if it spells none."""
    text = _decimal_text(value)
    return None if text is None else Decimal(text)


def floating(value: Any) -> float | None:
    """Return the float ``value`` spells (text or a JSON integer), or None if it spells none."""
    text = _decimal_text(value)
    return None if text is None else float(text)


def _decimal_text(value: Any) -> str | None:
    if type(value) is int:
        value = str(value)
    elif not isinstance(value, str):
        return None
    match = _DECIMAL.fullmatch(value)
    return None if match is None else _bounded(value, match.group(1))


def _bounded(text: str, whole: str) -> str:
    """Return ``text``, or the signed :data:`_HUGE` if its integer part ``whole`` is longer."""
    if len(whole) > MAX_DIGITS and len(whole.lstrip("0")) > MAX_DIGITS:
        return "-" + _HUGE if text[0] == "-" else _HUGE
    return text
