"""The IP anonymiser: the IPv4 fast path answers as ipaddress does, and IPv6 carrying an IPv4.

The property test leaves IPv6 text (with a colon) out; the examples below cover it.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.preprocessors.ip import IpAnonymiser


def by_ipaddress(raw: str, prefix: int) -> str | None:
    """The network address as ipaddress computes it, for text without a colon (no IPv6)."""
    try:
        return str(ipaddress.ip_network(f"{raw}/{prefix}", strict=False).network_address)
    except ValueError:
        return None


OCTETS = st.one_of(
    st.integers(0, 300).map(str),
    st.sampled_from(["00", "01", "007", "\u0661", " 1", "1 ", "+1", "1_0", "", "0x1"]),
)
QUADS = st.lists(OCTETS, min_size=3, max_size=5).map(".".join)


@given(
    raw=st.one_of(QUADS, st.text(max_size=20).filter(lambda t: ":" not in t)),
    prefix=st.integers(0, 32),
)
def test_ipv4_fast_path_matches_ipaddress(raw, prefix):
    anonymiser = IpAnonymiser("ip", {"ipv4_prefix": prefix, "ipv6_prefix": 48})
    assert anonymiser.anonymise(raw) == by_ipaddress(raw, prefix)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # 6to4: 2002:c633:6417::/48 is the whole of 198.51.100.23.
        ("2002:c633:6417::1", "198.51.100.0"),
        ("2002:c633:6417:1234:5678:9abc:def0:1", "198.51.100.0"),
        # Teredo (RFC 4380's example): server 65.54.227.120, client 192.0.2.45 inverted.
        ("2001:0000:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.0"),
        ("::ffff:198.51.100.23", "198.51.100.0"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::"),
        # Neighbours of the prefixes are plain IPv6.
        ("2003:c633:6417::1", "2003:c633:6417::"),
        ("2001:1:4136:e378::1", "2001:1:4136::"),
    ],
)
def test_ipv6_addresses_that_carry_an_ipv4_are_anonymised_as_that_ipv4(raw, expected):
    anonymiser = IpAnonymiser("ip", {"ipv4_prefix": 24, "ipv6_prefix": 48})
    assert anonymiser.anonymise(raw) == expected


def test_the_teredo_example_carries_the_client_it_is_anonymised_to():
    teredo = ipaddress.IPv6Address("2001:0000:4136:e378:8000:63bf:3fff:fdd2").teredo
    assert teredo == (ipaddress.IPv4Address("65.54.227.120"), ipaddress.IPv4Address("192.0.2.45"))
