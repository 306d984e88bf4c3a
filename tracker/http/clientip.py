"""The client's IP address, honouring only proxies the operator trusts."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientIp:
    """Resolve the client IP from the peer address and ``X-Forwarded-For``.

    ``X-Forwarded-For`` is only believed when the peer is a trusted proxy (a
    load balancer or ingress): the header is then walked from the right, and
    the first address that is not itself a trusted proxy is the client. With no
    trusted proxies configured the header is ignored, so a caller cannot spoof
    its address.
    """

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in trusted
        )

    def is_trusted(self, address: str) -> bool:
        """Return whether ``address`` is in one of the networks."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """Return the client address for a request from ``peer``."""
        if not self.trusted or not forwarded_for or not peer or not self.is_trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer
        return hops[0] if hops else peer
