"""Build TCF v2 consent strings for tests, with the field widths of the specification."""

from __future__ import annotations

import string

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def encode(fields: list[tuple[int, int]]) -> str:
    """Write (value, width) fields big-endian, zero-pad to 6 bits, map to web-safe base64."""
    bits = "".join(format(value, f"0{width}b") for value, width in fields)
    bits += "0" * (-len(bits) % 6)
    return "".join(ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


def _letters(code: str) -> int:
    return (ord(code[0]) - ord("a")) << 6 | (ord(code[1]) - ord("a"))


def tc_string(
    purposes: tuple[int, ...] = (),
    *,
    version: int = 2,
    vendors: tuple[int, ...] = (),
    max_vendor_id: int = 0,
    ranges: list[tuple[int, int]] | None = None,
    purpose_one_treatment: int = 0,
) -> str:
    """Build a TCF v2 core segment with the field widths of the specification."""
    fields = [
        (version, 6),
        (17_000_000_000, 36),  # Created, deciseconds
        (17_000_000_000, 36),  # LastUpdated
        (7, 12),  # CmpId
        (1, 12),  # CmpVersion
        (1, 6),  # ConsentScreen
        (_letters("en"), 12),  # ConsentLanguage
        (150, 12),  # VendorListVersion
        (5, 6),  # TcfPolicyVersion
        (1, 1),  # IsServiceSpecific
        (0, 1),  # UseNonStandardTexts
        (0, 12),  # SpecialFeatureOptIns
        (sum(1 << (24 - p) for p in purposes), 24),  # PurposesConsent
        (0, 24),  # PurposesLITransparency
        (purpose_one_treatment, 1),
        (_letters("de"), 12),  # PublisherCC
    ]
    if ranges is None:
        fields += [(max_vendor_id, 16), (0, 1)]
        fields += [(int(v in vendors), 1) for v in range(1, max_vendor_id + 1)]
    else:
        fields += [(max_vendor_id, 16), (1, 1), (len(ranges), 12)]
        for start, end in ranges:
            if start == end:
                fields += [(0, 1), (start, 16)]
            else:
                fields += [(1, 1), (start, 16), (end, 16)]
    fields += [(0, 16), (0, 1), (0, 12)]  # no vendor legitimate interest, no restrictions
    return encode(fields)
