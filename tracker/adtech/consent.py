"""Whether a request's privacy signals allow storing a user identifier on the device.

Pure functions over the IAB signals a tracking request carries (``gdpr``, ``gdpr_consent``,
``us_privacy``, ``gpp``, ``gpp_sid``); no HTTP, nothing precomputed beyond a regex. Decoding a
TC string reads at most a few fields out of one integer built from the decoded bytes.

Formats, as verified against the IAB specifications:

* TCF v2 TC string: "Transparency and Consent String with Global Vendor & CMP List Formats",
  InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework,
  ``TCFv2/IAB Tech Lab - Consent string and vendor list formats v2.md`` (v2.0 of 2019 through
  v2.3 of 2025: the core segment layout is unchanged). Core segment fields, big-endian, bit
  numbering left to right: Version 6 (= 2), Created 36, LastUpdated 36, CmpId 12, CmpVersion 12,
  ConsentScreen 6, ConsentLanguage 12, VendorListVersion 12, TcfPolicyVersion 6,
  IsServiceSpecific 1, UseNonStandardTexts 1 (named UseNonStandardStacks in v2.0),
  SpecialFeatureOptIns 12, PurposesConsent 24 (Purpose 1 is the 0th bit), PurposesLITransparency
  24, PurposeOneTreatment 1, PublisherCC 12, then the vendor consent section (MaxVendorId 16,
  IsRangeEncoding 1, a bitfield of MaxVendorId bits or NumEntries 12 and entries of IsARange 1,
  StartOrOnlyVendorId 16, EndVendorId 16 when a range), the vendor legitimate interest section
  and NumPubRestrictions 12. Segments are joined by ``.``; the core comes first.
* US Privacy string: InteractiveAdvertisingBureau/USPrivacy, ``CCPA/US Privacy String.md``:
  four characters, version ``1``, explicit notice, opt-out of sale, LSPA covered, each of the
  last three ``Y``, ``N`` or ``-`` (``1---`` means CCPA does not apply).
* GPP: InteractiveAdvertisingBureau/Global-Privacy-Platform, ``Core/Consent String
  Specification.md`` (header: Type 6 = 3, Version 6 = 1, Section IDs as a Fibonacci range;
  sections follow in that order, joined by ``~``; each is encoded 6 bits a character with the
  web-safe base64 alphabet, zero-padded to a multiple of 6 bits, not to base64 blocks) and
  ``Sections/US-National/IAB Privacy's Multi-State Privacy Agreement (MSPA) US National
  Technical Specification.md`` (section 7, ``usnat``, versions 1 and 2: Version 6, six 2-bit
  notices, then SaleOptOut 2, SharingOptOut 2, TargetedAdvertisingOptOut 2, where 1 means
  opted out). Section 6 (``uspv1``) carries a plain US Privacy string.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

_WEBSAFE = re.compile(r"[A-Za-z0-9_-]+")
_TO_STANDARD = str.maketrans("-_", "+/")

# TCF v2 core segment: bit offsets from the field table of the specification.
_TCF_PURPOSES_CONSENT = 152
_TCF_PURPOSE_ONE_TREATMENT = 200
_TCF_MAX_VENDOR_ID = 213
_TCF_VENDOR_ENCODING = 229
_TCF_VENDOR_FIELDS = 230
# Fixed fields, both vendor section headers with no vendor, and NumPubRestrictions: no valid
# core segment is shorter (44 characters).
_TCF_MIN_BITS = _TCF_MAX_VENDOR_ID + 17 + 17 + 12
_TCF_MIN_CHARS = -(-_TCF_MIN_BITS // 6)

_GPP_USPV1 = 6
_GPP_USNAT = 7
# usnat SaleOptOut, SharingOptOut and TargetedAdvertisingOptOut.
_USNAT_OPT_OUT_FIELDS = (18, 20, 22)
# Section IDs are small: a Fibonacci code word longer than this is garbage, not an ID.
_MAX_FIBONACCI_BITS = 12


class _Bits:
    """The bits of one web-safe base64 segment, read as big-endian fields."""

    __slots__ = ("_value", "size")

    def __init__(self, segment: str) -> None:
        if not _WEBSAFE.fullmatch(segment):
            raise ValueError("not web-safe base64")
        # Encoders pad to 6 bits, not to base64 blocks: complete the block with zero bits.
        fill = -len(segment) % 4
        data = binascii.a2b_base64(segment.translate(_TO_STANDARD) + "A" * fill)
        self._value = int.from_bytes(data, "big") >> (6 * fill)
        self.size = 6 * len(segment)

    def read(self, offset: int, width: int) -> int:
        """Return the unsigned field of ``width`` bits at ``offset``."""
        if offset + width > self.size:
            raise ValueError("truncated")
        return (self._value >> (self.size - offset - width)) & ((1 << width) - 1)

    def fibonacci(self, offset: int) -> tuple[int, int]:
        """Return a Fibonacci-coded integer at ``offset`` and the offset after it."""
        value, weight, next_weight, previous = 0, 1, 2, 0
        for position in range(offset, min(offset + _MAX_FIBONACCI_BITS, self.size)):
            bit = self.read(position, 1)
            if bit and previous:
                return value, position + 1
            value += weight * bit
            weight, next_weight = next_weight, weight + next_weight
            previous = bit
        raise ValueError("bad Fibonacci code")


def _tcf_core(tc_string: str) -> _Bits | None:
    core = tc_string.partition(".")[0]
    if len(core) < _TCF_MIN_CHARS:
        return None
    try:
        bits = _Bits(core)
    except ValueError:
        return None
    return bits if bits.read(0, 6) == 2 else None


def tcf_purpose_consents(tc_string: str) -> frozenset[int] | None:
    """Return the purposes (1..24) the user consented to in a TCF v2 TC string.

    Only the core segment (before the first ``.``) is read. Returns None when it is not
    web-safe base64, its Version field is not 2 (a TCF v1 consent string has 1), or it is
    shorter than the smallest valid core segment. Policy checks (IsServiceSpecific,
    TcfPolicyVersion) are left to the caller.
    """
    bits = _tcf_core(tc_string)
    if bits is None:
        return None
    mask = bits.read(_TCF_PURPOSES_CONSENT, 24)
    return frozenset(p for p in range(1, 25) if mask & (1 << (24 - p)))


def tcf_purpose_one_treatment(tc_string: str) -> bool | None:
    """Return the PurposeOneTreatment bit of a TCF v2 TC string: Purpose 1 was not disclosed.

    None when the core segment is not a TCF v2 core segment (as for
    :func:`tcf_purpose_consents`).
    """
    bits = _tcf_core(tc_string)
    return None if bits is None else bool(bits.read(_TCF_PURPOSE_ONE_TREATMENT, 1))


def tcf_vendor_consent(tc_string: str, vendor_id: int) -> bool | None:
    """Return whether the vendor consent section of a TC string consents to ``vendor_id``.

    Handles both the bitfield and the range encoding. Returns None when the core segment is
    not a TCF v2 core segment or the vendor consent section is cut short.
    """
    bits = _tcf_core(tc_string)
    if bits is None:
        return None
    try:
        return _vendor_consent(bits, vendor_id)
    except ValueError:
        return None


def _vendor_consent(bits: _Bits, vendor_id: int) -> bool:
    max_vendor_id = bits.read(_TCF_MAX_VENDOR_ID, 16)
    if not bits.read(_TCF_VENDOR_ENCODING, 1):
        bits.read(_TCF_VENDOR_FIELDS, max_vendor_id)  # the whole bitfield must be there
        return 1 <= vendor_id <= max_vendor_id and bool(
            bits.read(_TCF_VENDOR_FIELDS + vendor_id - 1, 1)
        )
    position = _TCF_VENDOR_FIELDS + 12
    for _ in range(bits.read(_TCF_VENDOR_FIELDS, 12)):
        start = end = bits.read(position + 1, 16)
        if bits.read(position, 1):
            end = bits.read(position + 17, 16)
            position += 16
        position += 17
        if start <= vendor_id <= end:
            return True
    return False


def us_privacy_opted_out(value: str | None) -> bool | None:
    """Return whether a US Privacy (CCPA) string says the user opted out of sale.

    True for ``Y`` in the third position, False for ``N``, None for ``-`` (not applicable)
    or anything that is not a version 1 string of ``Y``/``N``/``-``. Lowercase letters are
    accepted, which can only turn an invalid string into an opt-out being honoured.
    """
    if not value or len(value) != 4 or value[0] != "1":
        return None
    flags = value[1:].upper()
    if any(flag not in "YN-" for flag in flags):
        return None
    return {"Y": True, "N": False}.get(flags[1])


def _gpp_sections(gpp: str) -> dict[int, str] | None:
    """Map section ID to encoded section, from the GPP header; None if it is not one."""
    header, *sections = gpp.split("~")
    bits = _Bits(header)
    if bits.read(0, 6) != 3 or bits.read(6, 6) != 1:
        return None
    ids: list[int] = []
    position, last = 24, 0
    for _ in range(bits.read(12, 12)):
        is_group = bits.read(position, 1)
        offset, position = bits.fibonacci(position + 1)
        start = end = last + offset
        if is_group:
            length, position = bits.fibonacci(position)
            end = start + length
        ids.extend(range(start, min(end, start + len(sections)) + 1))
        if len(ids) > len(sections):
            return None
        last = end
    return dict(zip(ids, sections, strict=True)) if len(ids) == len(sections) else None


def _usnat_opted_out(section: str) -> bool | None:
    bits = _Bits(section.partition(".")[0])
    if bits.read(0, 6) not in (1, 2):
        return None
    return any(bits.read(offset, 2) == 1 for offset in _USNAT_OPT_OUT_FIELDS)


def gpp_us_opted_out(gpp: str | None) -> bool | None:
    """Return whether a GPP string's US sections say the user opted out.

    Reads the US National section (ID 7: an opt-out of sale, of sharing or of targeted
    advertising counts) and the US Privacy section (ID 6: an opt-out of sale). True if either
    says opted out, False if one was read and neither did, None if the string has neither or
    cannot be decoded. The US state sections (IDs 8 and up), the GPC subsection and the EU TCF
    section are not read.
    """
    if not gpp:
        return None
    try:
        sections = _gpp_sections(gpp)
        if sections is None:
            return None
        usnat = _usnat_opted_out(sections[_GPP_USNAT]) if _GPP_USNAT in sections else None
    except ValueError:
        return None
    verdicts = {usnat, us_privacy_opted_out(sections.get(_GPP_USPV1))} - {None}
    return any(verdicts) if verdicts else None


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """Whether an identifier may be stored, and a short machine-friendly reason.

    Reasons: ``gdpr_purpose1_consent``, ``gdpr_not_applicable`` (allowed);
    ``gdpr_no_purpose1``, ``gdpr_no_vendor_consent``, ``gdpr_consent_missing``,
    ``gdpr_consent_invalid``,
    ``us_privacy_opt_out``, ``gpc_opt_out``, ``gpp_opt_out``, ``no_signal`` (refused).
    """

    allowed: bool
    reason: str


def _gdpr_applies(gdpr: str | int | bool | None) -> bool | None:
    if isinstance(gdpr, bool):
        return gdpr
    if isinstance(gdpr, int):
        return {1: True, 0: False}.get(gdpr)
    if isinstance(gdpr, str):
        return {"1": True, "true": True, "0": False, "false": False}.get(gdpr.strip().lower())
    return None


def _us_refusal(us_privacy: str | None, gpp: str | None, gpc: bool) -> ConsentDecision | None:
    if us_privacy_opted_out(us_privacy):
        return ConsentDecision(False, "us_privacy_opt_out")
    if gpc:
        return ConsentDecision(False, "gpc_opt_out")
    if gpp_us_opted_out(gpp):
        return ConsentDecision(False, "gpp_opt_out")
    return None


def may_store_identifier(
    gdpr: str | int | bool | None,
    gdpr_consent: str | None,
    us_privacy: str | None,
    gpp: str | None = None,
    gpp_sid: str | None = None,
    require_signal: bool = True,
    vendor_id: int | None = None,
    gpc: bool = False,
) -> ConsentDecision:
    """Decide whether this request may store an identifier: a user-id cookie, a visitor id.

    Deliberately conservative: no cookie in doubt. In order:

    1. ``gdpr`` unknown (absent, empty, anything but ``1``/``true``/``0``/``false``): refused
       with ``no_signal`` when ``require_signal``, else handled as ``gdpr`` ``0``.
    2. ``gdpr`` ``1``: refused unless ``gdpr_consent`` is a decodable TCF v2 TC string with
       consent for Purpose 1, "Store and/or access information on a device"
       (``gdpr_consent_missing``, ``gdpr_consent_invalid``, ``gdpr_no_purpose1``). A string
       with PurposeOneTreatment set (Purpose 1 was not disclosed to the user) carries no
       Purpose 1 consent, whatever its Purpose 1 bit says: ``gdpr_no_purpose1``. With a
       ``vendor_id`` (the tracker operator's id in the Global Vendor List), the string must
       also give that vendor consent (``gdpr_no_vendor_consent``): Purpose 1 alone is
       consent for some vendor, not necessarily for this one.
    3. Whatever ``gdpr`` says, an opt-out is a veto: ``us_privacy`` opted out of sale
       (``us_privacy_opt_out``), ``gpc`` (the browser's Global Privacy Control, ``Sec-GPC: 1``,
       an opt-out of sale and sharing: ``gpc_opt_out``), or ``gpp`` with a US National
       section opted out of sale, sharing or targeted advertising, or a US Privacy section
       opted out of sale (``gpp_opt_out``). An opt-out of sale is taken as refusing
       identifiers. A malformed ``us_privacy`` or ``gpp`` says nothing and refuses nothing.
    4. Otherwise allowed: ``gdpr_purpose1_consent`` when GDPR applies, else
       ``gdpr_not_applicable``.

    ``gpp_sid`` is accepted but does not narrow which GPP sections are read: an opt-out in a
    section is honoured even when the sid does not list it. A TC string inside ``gpp`` is not
    used in place of a missing ``gdpr_consent``.
    """
    applies = _gdpr_applies(gdpr)
    if applies is None and require_signal:
        return ConsentDecision(False, "no_signal")
    if applies:
        if not gdpr_consent:
            return ConsentDecision(False, "gdpr_consent_missing")
        purposes = tcf_purpose_consents(gdpr_consent)
        if purposes is None:
            return ConsentDecision(False, "gdpr_consent_invalid")
        if 1 not in purposes or tcf_purpose_one_treatment(gdpr_consent):
            return ConsentDecision(False, "gdpr_no_purpose1")
        if vendor_id is not None and not tcf_vendor_consent(gdpr_consent, vendor_id):
            return ConsentDecision(False, "gdpr_no_vendor_consent")
    refusal = _us_refusal(us_privacy, gpp, gpc)
    if refusal is not None:
        return refusal
    return ConsentDecision(True, "gdpr_purpose1_consent" if applies else "gdpr_not_applicable")
