"""Client IP resolution behind trusted proxies."""

from __future__ import annotations

from tracker.http.clientip import ClientIp


def test_without_trusted_proxies_the_header_is_ignored():
    assert ClientIp([]).resolve("10.0.0.5", "198.51.100.1") == "10.0.0.5"


def test_rightmost_untrusted_hop_is_the_client():
    resolver = ClientIp(["10.0.0.0/8"])
    assert resolver.resolve("10.0.0.5", "6.6.6.6, 198.51.100.1, 10.0.0.9") == "198.51.100.1"


def test_untrusted_peer_cannot_spoof():
    resolver = ClientIp(["10.0.0.0/8"])
    assert resolver.resolve("192.0.2.1", "198.51.100.1") == "192.0.2.1"


def test_garbage_hop_falls_back_to_peer():
    resolver = ClientIp(["10.0.0.0/8"])
    assert resolver.resolve("10.0.0.5", "<script>") == "10.0.0.5"
