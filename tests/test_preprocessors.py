"""Built-in preprocessors."""

from __future__ import annotations

import pytest

from tracker.event import Event
from tracker.preprocessors.ip import IpAnonymiser, IpAnonymiserOptions


def anonymiser(**options):
    return IpAnonymiser("anon", IpAnonymiserOptions().load(options))


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        ("not-an-ip", None),
    ],
)
def test_default_prefixes(ip, expected):
    event = anonymiser().process(Event(type="t", path="p", context={"ip": ip}))
    assert event.context["ip"] == expected


def test_configured_prefixes():
    event = Event(type="t", path="p", context={"ip": "203.0.113.77"})
    assert anonymiser(ipv4_prefix=16).process(event).context["ip"] == "203.0.0.0"


def test_missing_ip_is_left_alone():
    event = anonymiser().process(Event(type="t", path="p", context={"ip": None}))
    assert event.context == {"ip": None}
