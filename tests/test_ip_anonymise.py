"""The IPv4 fast path of the IP anonymiser answers as ipaddress does."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from tracker.preprocessors.ip import IpAnonymiser


def by_ipaddress(raw: str, prefix: int) -> str | None:
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = 32 if ip.version == 4 else 128
    network = ipaddress.ip_network(f"{ip}/{min(prefix, bits) if ip.version == 4 else 48}", False)
    return str(network.network_address)


OCTETS = st.one_of(
    st.integers(0, 300).map(str),
    st.sampled_from(["00", "01", "007", "\u0661", " 1", "1 ", "+1", "1_0", "", "0x1"]),
)
QUADS = st.lists(OCTETS, min_size=3, max_size=5).map(".".join)


@given(raw=st.one_of(QUADS, st.text(max_size=20)), prefix=st.integers(0, 32))
def test_ipv4_fast_path_matches_ipaddress(raw, prefix):
    anonymiser = IpAnonymiser("ip", {"ipv4_prefix": prefix, "ipv6_prefix": 48})
    assert anonymiser.anonymise(raw) == by_ipaddress(raw, prefix)
