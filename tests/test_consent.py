"""Consent signals: TC string, US Privacy and GPP decoding, and the identifier decision."""

from __future__ import annotations

import pytest

from tests.tcf import ALPHABET, encode, tc_string
from tracker.adtech.consent import (
    ConsentDecision,
    gpp_us_opted_out,
    may_store_identifier,
    tcf_purpose_consents,
    tcf_vendor_consent,
    us_privacy_opted_out,
)


def _fibonacci(n: int) -> str:
    weights = [1, 2]
    while weights[-1] <= n:
        weights.append(weights[-1] + weights[-2])
    code = ["0"] * len(weights)
    for i in reversed(range(len(weights))):
        if weights[i] <= n:
            code[i], n = "1", n - weights[i]
    return "".join(code).rstrip("0") + "1"


def gpp_string(sections: dict[int, str]) -> str:
    """Build a GPP string: a header listing each section as a single ID, then the sections."""
    header = format(3, "06b") + format(1, "06b") + format(len(sections), "012b")
    last = 0
    for section_id in sorted(sections):
        header += "0" + _fibonacci(section_id - last)
        last = section_id
    header += "0" * (-len(header) % 6)
    encoded = "".join(ALPHABET[int(header[i : i + 6], 2)] for i in range(0, len(header), 6))
    return "~".join([encoded, *(sections[k] for k in sorted(sections))])


def usnat(sale: int = 2, sharing: int = 2, targeted: int = 2, version: int = 1) -> str:
    """Build a US National core segment (opt-outs: 0 not applicable, 1 opted out, 2 did not)."""
    notices = [(1, 2)] * 6
    sensitive, child = (12, 2) if version == 1 else (16, 3)
    return encode(
        [
            (version, 6),
            *notices,
            (sale, 2),
            (sharing, 2),
            (targeted, 2),
            (0, 2 * sensitive),  # SensitiveDataProcessing
            (0, 2 * child),  # KnownChildSensitiveDataConsents
            (0, 2),  # PersonalDataConsents
            (1, 2),  # MspaCoveredTransaction
            (0, 4),  # MspaOptOutOptionMode, MspaServiceProviderMode
        ]
    )


# Examples from the IAB TCF v2 spec, "Consent string and vendor list formats v2.md" in
# InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework. The first is in the
# current (v2.3) text; the other two are in the v2.0 text (e.g. revision 0093b3d, May 2020)
# and were dropped in 2025. Expected values were cross-checked with the iab-tcf 0.2.2 decoder.
SPEC_V23 = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"
SPEC_SERVICE_SPECIFIC = (
    "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA"
    ".argAC0gAAAAAAAAAAAA"
)
SPEC_OOB_CORE = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"
# The TCF v1.1 example from "Consent string and vendor list formats v1.1 Final.md", same repo.
SPEC_V1 = "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA"

# GPP strings: the header examples of the GPP "Consent String Specification.md"
# (InteractiveAdvertisingBureau/Global-Privacy-Platform, Core/); the usnat ones were encoded
# with the IAB reference implementation, @iabgpp/cmpapi 3.2.0 GppModel.
GPP_SPEC_TCF_USP = "DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN"
GPP_SPEC_TCF_USP_PADDED = "DBACNYA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN"
GPP_SPEC_TCFCA_USP = "DBABjw~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN"
GPP_SPEC_TCF_ONLY = "DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"
GPP_USNAT_SALE = "DBABLA~CEAQAAAAAABA.QA"
GPP_USNAT_SHARING = "DBABLA~CBAEAAAAAABA.QA"
GPP_USNAT_TARGETED = "DBABLA~CAQBAAAAAABA.QA"
GPP_USNAT_NONE = "DBABLA~CFQqAAAAAABA.QA"
GPP_USP_USNAT_SALE = "DBABzw~1YNN~CEAQAAAAAABA.QA"  # sections 6..7 as one Fibonacci group


# --- TC string ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "purposes", [(), (1,), (2, 7), (1, 2, 3, 4, 7, 9, 10), (24,), tuple(range(1, 25))]
)
def test_purposes_round_trip(purposes):
    assert tcf_purpose_consents(tc_string(purposes)) == frozenset(purposes)


def test_only_the_core_segment_is_read():
    assert tcf_purpose_consents(tc_string((1, 3)) + ".IDKQA4AAgAKAGQAygAAA") == {1, 3}


@pytest.mark.parametrize(
    ("tc", "purposes"),
    [(SPEC_V23, set()), (SPEC_SERVICE_SPECIFIC, {1, 3, 9, 10}), (SPEC_OOB_CORE, {1, 2, 3})],
)
def test_spec_examples(tc, purposes):
    assert tcf_purpose_consents(tc) == purposes


@pytest.mark.parametrize(
    "tc",
    [
        "",
        ".IDKQA4AAgAKAGQAygAAA",
        SPEC_V1,
        tc_string((1,), version=1),
        tc_string((1,), version=3),
        tc_string((1,))[:40],  # truncated before the vendor sections
        "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAA=",  # padding is not web-safe base64
        "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAA+",  # standard alphabet
        "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAA A",
        "not a tc string, not at all, but long enough to pass the length check",
    ],
)
def test_undecodable_strings(tc):
    assert tcf_purpose_consents(tc) is None
    assert tcf_vendor_consent(tc, 1) is None


def test_any_length_decodes_as_encoders_pad_to_6_bits_only():
    tc = tc_string((1,))
    assert tcf_purpose_consents(tc + "A") == {1}
    assert tcf_purpose_consents(tc + "AA") == {1}


def test_vendor_bitfield():
    tc = tc_string((1,), vendors=(2, 5), max_vendor_id=6)
    assert [tcf_vendor_consent(tc, v) for v in range(0, 8)] == [
        False,
        False,
        True,
        False,
        False,
        True,
        False,
        False,
    ]


def test_vendor_ranges():
    tc = tc_string((1,), max_vendor_id=900, ranges=[(3, 3), (10, 12), (900, 900)])
    consenting = [v for v in range(0, 1000) if tcf_vendor_consent(tc, v)]
    assert consenting == [3, 10, 11, 12, 900]


def test_vendor_section_cut_short():
    bitfield = tc_string(vendors=(1,), max_vendor_id=300)
    assert tcf_vendor_consent(bitfield[:60], 1) is None
    ranged = tc_string(max_vendor_id=900, ranges=[(i, i) for i in range(1, 40, 2)])
    assert tcf_vendor_consent(ranged[:60], 39) is None


@pytest.mark.parametrize(
    ("tc", "vendors"),
    [
        (SPEC_V23, {1, 2, 3, 4}),
        (SPEC_OOB_CORE, {2, 6, 8}),
        (SPEC_SERVICE_SPECIFIC, {2, 3, 6, 7, 8, 10, 12, 13, 14, 15, 16, 21, 25, 27, 30, 31}),
    ],
)
def test_spec_example_vendors(tc, vendors):
    assert {v for v in range(1, 32) if tcf_vendor_consent(tc, v)} == vendors


# --- US Privacy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1YNN", False),
        ("1NYY", True),
        ("1-Y-", True),
        ("1yyn", True),
        ("1---", None),
        ("1Y-N", None),
        ("2YYN", None),
        ("1YY", None),
        ("1YYNN", None),
        ("1YXN", None),
        ("", None),
        (None, None),
    ],
)
def test_us_privacy(value, expected):
    assert us_privacy_opted_out(value) is expected


# --- GPP ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpp", "expected"),
    [
        (GPP_SPEC_TCF_USP, False),
        (GPP_SPEC_TCF_USP_PADDED, False),
        (GPP_SPEC_TCFCA_USP, False),
        (GPP_SPEC_TCF_ONLY, None),
        (GPP_USNAT_SALE, True),
        (GPP_USNAT_SHARING, True),
        (GPP_USNAT_TARGETED, True),
        (GPP_USNAT_NONE, False),
        (GPP_USP_USNAT_SALE, True),
    ],
)
def test_gpp_reference_strings(gpp, expected):
    assert gpp_us_opted_out(gpp) is expected


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({2: tc_string((1,)), 6: "1YYN"}, True),
        ({2: tc_string((1,)), 7: usnat(), 9: "BAAAAAAA"}, False),
        ({7: usnat(sale=1), 21: "BAAAAAAA"}, True),
        ({7: usnat(targeted=1, version=2)}, True),
        ({6: "1NNN", 7: usnat(sharing=1)}, True),
        ({6: "1YYN", 7: usnat()}, True),
        ({7: usnat(sale=0, sharing=0, targeted=0)}, False),
        ({7: usnat(sale=1, version=3)}, None),  # unknown layout
        ({8: "BAAAAAAA"}, None),
    ],
)
def test_gpp_sections(sections, expected):
    assert gpp_us_opted_out(gpp_string(sections)) is expected


@pytest.mark.parametrize(
    "gpp",
    [
        None,
        "",
        "~1YYN",
        "DBABM",  # header lists a section the string does not have
        "DBABM~1YYN~extra",  # and the other way round
        "DBACNY~1YYN",
        "ABABzw~1YNN~CEAQAAAAAABA.QA",  # not a GPP header type
        "DCABzw~1YNN~CEAQAAAAAABA.QA",  # GPP version 2
        "DBA!zw~1YNN~CEAQAAAAAABA.QA",
        "DBAB~1YYN",  # header cut short
        "DBABAAAA~1YYN",  # no Fibonacci terminator
        "DBABLA~C",  # usnat section cut short
        "DBABLA~C!AQ",
        "1YYN",
    ],
)
def test_malformed_gpp_says_nothing(gpp):
    assert gpp_us_opted_out(gpp) is None


# --- the decision ---------------------------------------------------------------------


def decision(allowed: bool, reason: str) -> ConsentDecision:
    return ConsentDecision(allowed=allowed, reason=reason)


@pytest.mark.parametrize("gdpr", [1, "1", True, "true", " TRUE "])
def test_gdpr_applies_with_purpose_one(gdpr):
    tc = tc_string((1, 2, 3))
    assert may_store_identifier(gdpr, tc, None) == decision(True, "gdpr_purpose1_consent")


@pytest.mark.parametrize(
    ("consent", "reason"),
    [
        (None, "gdpr_consent_missing"),
        ("", "gdpr_consent_missing"),
        ("garbage!", "gdpr_consent_invalid"),
        (SPEC_V1, "gdpr_consent_invalid"),
        (tc_string((1,))[:30], "gdpr_consent_invalid"),
        (tc_string((2, 3, 4)), "gdpr_no_purpose1"),
        (tc_string(purpose_one_treatment=1), "gdpr_no_purpose1"),
        # Purpose 1 not disclosed: its consent bit says nothing.
        (tc_string((1, 2), purpose_one_treatment=1), "gdpr_no_purpose1"),
        (SPEC_V23, "gdpr_no_purpose1"),
    ],
)
def test_gdpr_applies_without_purpose_one(consent, reason):
    assert may_store_identifier("1", consent, "1YNN") == decision(False, reason)


def test_gdpr_spec_example_with_purpose_one():
    assert may_store_identifier(1, SPEC_SERVICE_SPECIFIC, None).allowed


def test_us_opt_out_vetoes_gdpr_consent():
    tc = tc_string((1,))
    assert may_store_identifier(1, tc, "1YYN") == decision(False, "us_privacy_opt_out")
    assert may_store_identifier(1, tc, None, GPP_USNAT_SALE) == decision(False, "gpp_opt_out")
    assert may_store_identifier(1, tc, None, gpc=True) == decision(False, "gpc_opt_out")
    assert may_store_identifier(0, None, "1NNN", gpc=True) == decision(False, "gpc_opt_out")


@pytest.mark.parametrize("gdpr", [0, "0", False, "false"])
def test_gdpr_not_applicable(gdpr):
    expected = decision(True, "gdpr_not_applicable")
    assert may_store_identifier(gdpr, None, None) == expected
    assert may_store_identifier(gdpr, tc_string(), "1YNN", GPP_USNAT_NONE, "7") == expected


@pytest.mark.parametrize(
    ("us_privacy", "gpp", "expected"),
    [
        ("1YYN", None, decision(False, "us_privacy_opt_out")),
        ("1-Y-", GPP_USNAT_NONE, decision(False, "us_privacy_opt_out")),
        ("1YNN", GPP_USNAT_SHARING, decision(False, "gpp_opt_out")),
        (None, GPP_USP_USNAT_SALE, decision(False, "gpp_opt_out")),
        ("1---", None, decision(True, "gdpr_not_applicable")),
        ("bogus", "bogus", decision(True, "gdpr_not_applicable")),
    ],
)
def test_us_signals_when_gdpr_does_not_apply(us_privacy, gpp, expected):
    assert may_store_identifier(0, None, us_privacy, gpp) == expected


def test_gpp_sid_does_not_hide_an_opt_out():
    refused = may_store_identifier(0, None, None, GPP_USNAT_SALE, gpp_sid="2")
    assert refused == decision(False, "gpp_opt_out")


@pytest.mark.parametrize("gdpr", [None, "", " ", "2", 2, -1, "yes", 1.0])
def test_no_gdpr_signal(gdpr):
    tc = tc_string((1,))
    assert may_store_identifier(gdpr, tc, "1YNN") == decision(False, "no_signal")
    lenient = may_store_identifier(gdpr, tc, "1YNN", require_signal=False)
    assert lenient == decision(True, "gdpr_not_applicable")
    opted_out = may_store_identifier(gdpr, None, "1YYN", require_signal=False)
    assert opted_out == decision(False, "us_privacy_opt_out")


def test_decision_is_frozen():
    with pytest.raises(AttributeError):
        decision(True, "no_signal").allowed = False  # type: ignore[misc]
