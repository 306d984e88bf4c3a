"""IP anonymisation: truncate the client address before any collector sees it."""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from marshmallow import Schema, fields, validate

from tracker.event import Event
from tracker.plugins import Preprocessor


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
        try:
            ip = ipaddress.ip_address(raw)
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return str(type(ip)(int(ip) & self.masks[ip.version]))
