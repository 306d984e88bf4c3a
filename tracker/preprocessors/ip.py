"""IP anonymisation: truncate the client address before any collector sees it."""

from __future__ import annotations

import ipaddress
import re
from typing import ClassVar

from marshmallow import Schema, fields, validate

from tracker.event import Event
from tracker.plugins import Preprocessor

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: A dotted-quad IPv4 address as ipaddress accepts it: ASCII digits, no leading zeros.
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


class IpAnonymiserOptions(Schema):
    """Options of the ``ip_anonymise`` preprocessor."""

    ipv4_prefix = fields.Integer(
        load_default=24,
        validate=validate.Range(min=0, max=32),
        metadata={
            "description": (
                "Bits of an IPv4 address kept (IPv4-mapped IPv6 addresses count as IPv4)."
            )
        },
    )
    ipv6_prefix = fields.Integer(
        load_default=48,
        validate=validate.Range(min=0, max=128),
        metadata={"description": "Bits of an IPv6 address kept."},
    )


class IpAnonymiser(Preprocessor):
    """Zero the host part of ``context.ip``.

    The defaults keep the /24 of an IPv4 and the /48 of an IPv6 address, which
    is what geo-lookup needs and what common privacy guidance accepts. A value
    that is not an IP address is removed rather than passed on.
    """

    options_schema: ClassVar = IpAnonymiserOptions

    def __init__(self, name, options):
        super().__init__(name, options)
        # Host masks computed once: ip_network() per request costs several times more.
        self.masks = {
            4: ((1 << 32) - 1) ^ ((1 << (32 - options["ipv4_prefix"])) - 1),
            6: ((1 << 128) - 1) ^ ((1 << (128 - options["ipv6_prefix"])) - 1),
        }

    def process(self, event: Event) -> Event:
        """Replace the event's IP with its network address."""
        raw = event.context.get("ip")
        if raw:
            event.context["ip"] = self.anonymise(raw)
        return event

    def anonymise(self, raw: str) -> str | None:
        """Return the network address of ``raw`` at the configured prefix."""
        if _IPV4.fullmatch(raw):
            # The common case without ipaddress objects (a third of the time):
            # the pattern accepts exactly the dotted quads ip_address() accepts.
            a, b, c, d = raw.split(".")
            n = ((int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)) & self.masks[4]
            return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        try:
            ip = ipaddress.ip_address(raw)
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return str(type(ip)(int(ip) & self.masks[ip.version]))
