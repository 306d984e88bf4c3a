"""OpenRTB 2.6 win, billing and loss notices (``nurl``, ``burl``, ``lurl``).

Before calling a notice URL the exchange replaces substitution macros in it
(OpenRTB 2.6 section 4.4): ``${AUCTION_PRICE}``, ``${AUCTION_CURRENCY}``,
``${AUCTION_ID}``, ``${AUCTION_IMP_ID}``, ``${AUCTION_BID_ID}``,
``${AUCTION_SEAT_ID}``, ``${AUCTION_AD_ID}``, ``${AUCTION_LOSS}``,
``${AUCTION_MIN_TO_WIN}``, ``${AUCTION_MBR}`` and a few more. This module turns
the substituted values into checked numbers: the clearing price as integer
micro-units of CPM (clear or encrypted) and the loss reason. The currency
needs no code: the config declares it a three-letter field with a default.

Nothing here knows HTTP: the caller passes the raw query values in and maps
:class:`NoticeError` onto its own error response.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

from tracker.adtech.errors import NoticeError
from tracker.adtech.pricecrypto import token_digest

if TYPE_CHECKING:
    from tracker.adtech.pricecrypto import PriceCrypto

#: Largest clearing price accepted, in micro-units of CPM (100000 per mille).
#: It catches a price sent in micros instead of currency units; callers whose
#: bid currency has a small unit (IDR, VND, KRW...) should pass a larger limit.
MAX_CPM_MICROS = 100_000 * 1_000_000

_MICRO = Decimal("0.000001")
# ASCII digits only: ``\d`` would also accept other scripts' digits.
_CLEAR_PRICE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_WEBSAFE_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")
# The separators may arrive percent-encoded when the notice URL went through
# an encoder on the way; the hex digits of an escape are case-insensitive.
_MACRO = re.compile(
    r"(?:\$|%24)(?:\{|%7B)([A-Za-z0-9_]+)(?:(?::|%3A)[A-Za-z0-9_]+)?(?:\}|%7D)", re.IGNORECASE
)

#: OpenRTB loss reason codes (``${AUCTION_LOSS}``). OpenRTB 2.6 section 4.4
#: refers to "List: Loss Reason Codes" of OpenRTB 3.0; the names are its own.
LOSS_REASONS: Mapping[int, str] = MappingProxyType(
    {
        0: "Bid Won",
        1: "Internal Error",
        2: "Impression Opportunity Expired",
        3: "Invalid Bid Response",
        4: "Invalid Deal ID",
        5: "Invalid Auction ID",
        6: "Invalid Advertiser Domain",
        7: "Missing Markup",
        8: "Missing Creative ID",
        9: "Missing Bid Price",
        10: "Missing Minimum Creative Approval Data",
        100: "Bid was Below Auction Floor",
        101: "Bid was Below Deal Floor",
        102: "Lost to Higher Bid",
        103: "Lost to a Bid for a Deal",
        104: "Buyer Seat Blocked",
        200: "Creative Filtered - General; Reason Unknown",
        201: "Creative Filtered - Pending Processing by Exchange",
        202: "Creative Filtered - Disapproved by Exchange",
        203: "Creative Filtered - Size Not Allowed",
        204: "Creative Filtered - Incorrect Creative Format",
        205: "Creative Filtered - Advertiser Exclusions",
        206: "Creative Filtered - App Store ID Exclusions",
        207: "Creative Filtered - Not Secure",
        208: "Creative Filtered - Language Exclusions",
        209: "Creative Filtered - Category Exclusions",
        210: "Creative Filtered - Creative Attribute Exclusions",
        211: "Creative Filtered - Ad Type Exclusions",
        212: "Creative Filtered - Animation Too Long",
        213: "Creative Filtered - Not Allowed in Deal",
        214: "Creative Filtered - Invalid SKAdNetwork",
        215: "Creative Filtered - App Bundle Exclusions",
    }
)

#: The spec reserves 500 and above for values each exchange defines.
EXCHANGE_SPECIFIC_LOSS = 500


@dataclass(frozen=True, slots=True)
class Price:
    """A clearing price read from a notice.

    Attributes:
        billable: False for the exchange's ``AUDIT`` call (test or ad quality
            render), which carries no price and must not be billed.
        cpm_micros: The price per thousand impressions in micro-units of the
            bid currency, or None when not billable.
        encrypted: Whether the exchange sent the price encrypted.
        token: For an encrypted price, a digest naming the token
            (:func:`~tracker.adtech.pricecrypto.token_digest`), else None.
    """

    billable: bool
    cpm_micros: int | None
    encrypted: bool
    token: str | None = None


AUDIT_PRICE = Price(billable=False, cpm_micros=None, encrypted=False)


def unsubstituted_macro(value: str) -> str | None:
    """Return the name of a macro left literally in ``value``, else None.

    Finds ``${NAME}``, its percent-encoded form ``%24%7BNAME%7D`` (any case of
    hex digits, or a mix of both forms) and the encoded-macro form
    ``${NAME:X}``, for which ``NAME`` is returned.
    """
    # Every form starts with "$" or "%24": a value with neither (nearly all) skips the
    # regex, whose scan costs about 3 us on a 900-character value (two C-speed finds).
    if "$" not in value and "%" not in value:
        return None
    match = _MACRO.search(value)
    return match.group(1) if match else None


def parse_price(
    raw: str | None,
    crypto: PriceCrypto | None = None,
    *,
    max_cpm_micros: int = MAX_CPM_MICROS,
) -> Price:
    """Read the clearing price (``${AUCTION_PRICE}``) of a notice.

    Accepted, after surrounding whitespace is stripped:

    * ``AUDIT`` in any case: the exchange's test render, not billable.
    * A clear decimal CPM: ASCII digits with an optional fraction
      (``2.5``, ``0.731``, ``12``); no sign, exponent, separators or bare
      point. More than 6 decimal places are rounded half-even to whole micros
      rather than refused, because exchanges print prices from doubles
      (``0.30000000000000004``) and a refused billing notice is lost money.
    * With ``crypto``, an encrypted token (see :class:`~tracker.adtech.pricecrypto.PriceCrypto`).

    A loss notice may legitimately carry an empty price (the spec lets the
    exchange withhold it); the caller checks for that before calling.

    Args:
        raw: The substituted value, or None when the parameter is absent.
        crypto: The exchange's price keys, when it encrypts prices.
        max_cpm_micros: Prices above this many CPM micros are refused.

    Raises:
        NoticeError: With reason ``missing_price``, ``unsubstituted_macro``,
            ``bad_price`` or ``price_integrity``.
    """
    text = (raw or "").strip()
    if not text:
        raise NoticeError(
            "missing_price", "price is missing or empty: the notice URL must carry ${AUCTION_PRICE}"
        )
    macro = unsubstituted_macro(text)
    if macro is not None:
        raise _macro_error("price", macro)
    if text.upper() == "AUDIT":
        return AUDIT_PRICE
    if _CLEAR_PRICE.fullmatch(text):
        amount = Decimal(text)
        # Checked before rounding: quantize() fails on more digits than the
        # decimal context holds, and the limit keeps the amount well inside it.
        if amount > Decimal(max_cpm_micros).scaleb(-6):
            raise _too_large(amount, max_cpm_micros)
        micros = amount.quantize(_MICRO, rounding=ROUND_HALF_EVEN).scaleb(6)
        return Price(billable=True, cpm_micros=int(micros), encrypted=False)
    if crypto is not None and _WEBSAFE_B64.fullmatch(text):
        cpm_micros = crypto.decrypt(text)
        if cpm_micros > max_cpm_micros:
            raise _too_large(Decimal(cpm_micros).scaleb(-6).normalize(), max_cpm_micros)
        return Price(billable=True, cpm_micros=cpm_micros, encrypted=True, token=token_digest(text))
    hint = (
        "" if crypto is not None else ", or is an encrypted price and no price keys are configured"
    )
    raise NoticeError(
        "bad_price",
        f"price {_shown(text)} is not a decimal CPM like 1.25 "
        f"(no sign, exponent or separators){hint}",
    )


def impression_micros(cpm_micros: int) -> int:
    """Return the price of one impression from a CPM, both in micro-units.

    CPM is the price of a thousand impressions, so this divides by 1000 and
    rounds half-even. Sub-micro precision is lost: at most half a micro-unit
    per impression (2500 CPM micros give 2, 1500 give 2).
    """
    quotient, remainder = divmod(cpm_micros, 1000)
    if remainder > 500 or (remainder == 500 and quotient % 2):
        quotient += 1
    return quotient


def loss_reason_name(code: int) -> str:
    """Return the name of a loss reason code (``${AUCTION_LOSS}``).

    Codes outside the standard list are ``"exchange-specific"`` from 500 up,
    where the spec lets each exchange define its own, and ``"unknown"`` below.
    """
    name = LOSS_REASONS.get(code)
    if name is not None:
        return name
    return "exchange-specific" if code >= EXCHANGE_SPECIFIC_LOSS else "unknown"


def _macro_error(what: str, macro: str) -> NoticeError:
    return NoticeError(
        "unsubstituted_macro",
        f"{what} is the literal ${{{macro}}}: the exchange did not substitute the macro",
    )


def _too_large(amount: Decimal, max_cpm_micros: int) -> NoticeError:
    limit = Decimal(max_cpm_micros).scaleb(-6).normalize()
    return NoticeError(
        "bad_price",
        f"price {amount:f} CPM is above the limit of {limit:f}: "
        "the price must be in currency units per thousand impressions, not micros",
    )


def _shown(text: str, limit: int = 40) -> str:
    # Values come from the query string: quoted so control characters show,
    # and cut so a huge value does not flood logs and responses.
    return repr(text if len(text) <= limit else text[:limit] + "...")
