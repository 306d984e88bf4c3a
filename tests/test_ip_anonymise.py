"""The IPv4 fast path of the IP anonymiser answers as ipaddress does.

IPv6 text (with a colon) takes the unchanged ipaddress path and is left out.
"""

from __future__ import annotations

import ipaddress

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
