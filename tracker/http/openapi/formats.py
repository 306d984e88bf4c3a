"""What a field's text must look like, in JSON Schema: the tracker's own rules, stated.

A decimal amount, a clearing price (clear, ``AUDIT`` or encrypted) and a
landing URL are read from text by the tracker, so the document states them as
patterns, generated from the same bounds, caps and token sizes the tracker
checks. A pattern is never wider than what the tracker accepts; where it
cannot be exact it is narrower, and the description says the exact rule.
"""

from __future__ import annotations

import math
import re
from typing import Any

from tracker.adtech import openrtb
from tracker.adtech.pricecrypto import TOKEN_SIZE
from tracker.config import FieldConfig, RedirectConfig
from tracker.intake.fields.checks import Checks


def _decimal(minimum: float | None, maximum: float | None) -> str:
    """A regex of decimal texts with at most 6 places, inside [minimum, maximum].

    JSON Schema cannot bound the value a numeric text spells, so the regex
    bounds its integer digits instead: with ``maximum`` 1000000 it allows up to
    999999.999999. The document is so narrower than the tracker at the edge of a
    range, never wider; the description states the exact bounds. Bounds that
    digits cannot follow (a positive minimum, a maximum under 1) leave only the
    shape.
    """
    fraction = r"(?:\.[0-9]{1,6})?"

    def integer(bound: float | None) -> str:
        # Integer parts of fewer digits than |bound| has stay below 10**k <= |bound|.
        if bound is None:
            return "[0-9]+"
        k = len(str(int(abs(bound)))) - 1
        return f"[0-9]{{1,{k}}}" if k else "0"

    if (minimum is not None and minimum > 0) or (maximum is not None and maximum < 1):
        return f"-?[0-9]+{fraction}"
    positive = integer(maximum) + fraction
    if minimum is not None and minimum > -1:
        return positive
    return f"(?:{positive}|-{integer(minimum)}{fraction})"


def decimal_pattern(minimum: float | None, maximum: float | None) -> str:
    """Return the whole-value pattern of a decimal amount inside [minimum, maximum]."""
    return f"^{_decimal(minimum, maximum)}$"


#: What ``parse_price`` reads: AUDIT in any case, or a clear decimal CPM under its cap.
_AUDIT = "[Aa][Uu][Dd][Ii][Tt]"
_CLEAR_CPM = _decimal(0, openrtb.MAX_CPM_MICROS / 1_000_000)
#: An encrypted price: the unpadded web-safe base64 of a token.
_ENCRYPTED = f"[A-Za-z0-9_-]{{{math.ceil(TOKEN_SIZE * 4 / 3)}}}"


def wire_format(spec: FieldConfig) -> dict[str, Any]:
    """Return what a field's text must look like, for types the tracker reads from text.

    An empty value of such a field counts as absent, so a required one must not
    be empty; the patterns below never match the empty text.
    """
    if spec.type == "micros":
        bounds = ", ".join(
            f"{name} {value}"
            for name, value in (("at least", spec.min), ("at most", spec.max))
            if value is not None
        )
        return {
            "pattern": decimal_pattern(spec.min, spec.max),
            "description": f"`{spec.name}` (micros): a decimal amount, at most 6 places"
            + (f", {bounds}" if bounds else "")
            + "; stored as integer micro-units. A JSON body may send a number.",
        }
    if spec.type == "auction_price":
        crypto = spec.price_crypto is not None
        forms = [_AUDIT]
        if not (spec.require_encrypted and crypto):
            forms.append(_CLEAR_CPM)
        if crypto:
            forms.append(_ENCRYPTED)
        return {
            "pattern": "^(?:" + "|".join(forms) + ")$",
            "description": f"`{spec.name}` (auction_price): the clearing price CPM "
            "(`${AUCTION_PRICE}`): `AUDIT`"
            + ("" if spec.require_encrypted and crypto else ", a decimal like `1.25`")
            + (", or the exchange's encrypted price" if crypto else "")
            + ".",
        }
    return {}


def landing_format(redirect: RedirectConfig) -> dict[str, Any]:
    """Return the landing URL's format: not empty, and on the allow-list when nothing else is.

    With signing keys a signed URL may go to any host, and with a fallback URL a
    refused click is redirected too: the pattern is only stated when neither
    applies, so the document never refuses what the tracker accepts.
    """
    extra: dict[str, Any] = {"minLength": 1}
    if redirect.signing_keys or redirect.fallback_url or not redirect.allowed_hosts:
        return extra
    label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    hosts = []
    for pattern in redirect.allowed_hosts:
        if pattern.startswith("*."):
            hosts.append(f"(?:{label}\\.)+" + re.escape(pattern[2:]))
        else:
            hosts.append(re.escape(pattern))
    # No whitespace, control characters, backslash or "$" (no unfilled macro).
    rest = r"(?:[/?#][!#%-\[\]-~]*)?"
    extra["pattern"] = f"^https?://(?:{'|'.join(hosts)})(?::[1-9][0-9]{{0,3}})?{rest}$"
    return extra


def plain_validators(validators: list) -> list:
    """Return a field's marshmallow validators, unfolded from the request path's ``Checks``."""
    plain = []
    for validator in validators:
        plain.extend(
            validator.validators.validators if isinstance(validator, Checks) else [validator]
        )
    return plain
