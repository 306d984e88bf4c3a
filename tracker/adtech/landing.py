"""Landing-URL safety: which URLs a click may redirect to, and how to say them.

A redirect lends the tracker's domain to whatever it points at, so only
absolute http(s) URLs whose host is read the same way by this module and by a
browser pass; :func:`compile_allow_list` turns the configured host patterns
into a predicate for the request path. Nothing here knows HTTP.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable
from urllib.parse import quote, urlsplit

MAX_URL_LENGTH = 2048
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Browsers parse a host whose last label looks like a number as an IPv4 address,
# in decimal, octal or hex ("2130706433", "0x7f.1" are 127.0.0.1).
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PORT = re.compile(r"[0-9]{1,5}")
# Python's IDNA 2003 codec maps these to other letters ("faß" to "fass") where
# browsers (UTS #46) keep them, so the host checked would not be the host visited.
_IDNA_DEVIATIONS = frozenset("\u00df\u03c2")
_PRINTABLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))


class UnsafeUrl(ValueError):
    """A URL the tracker will not redirect to, whatever its signature.

    Attributes:
        reason: Always ``invalid_landing_url``.
    """

    reason = "invalid_landing_url"


def check_landing_url(url: str) -> str:
    """Return the normalised host of ``url`` if the tracker may redirect to it.

    Only absolute ``http`` and ``https`` URLs of at most 2048 characters pass,
    with a host (a DNS name, a dotted-quad IPv4 address or a bracketed IPv6
    address) and an optional port, and without userinfo, backslashes,
    whitespace or control characters. This is stricter than browsers, so that
    the host found here is the host a browser visits.

    Returns:
        The host in lower case, IDNA-encoded, without trailing dot; an IPv6
        address in compressed form without brackets.

    Raises:
        UnsafeUrl: For anything else.
    """
    return split_url(url, "landing URL")[1]


def to_location(url: str) -> str:
    """Return ``url`` in ASCII for a ``Location`` header, or raise :class:`UnsafeUrl`.

    WSGI headers are Latin-1, so the host becomes its IDNA form and other
    non-ASCII characters are percent-encoded as UTF-8, as a browser would do.
    An ASCII URL comes back unchanged.
    """
    scheme, host, port, rest = split_url(url, "landing URL")
    if url.isascii():
        return url
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{quote(rest, safe=_PRINTABLE_ASCII)}"


def split_url(url: str, what: str) -> tuple[str, str, str, str]:
    """Check ``url`` and return its scheme, normalised host, port and the rest."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"The {what} is longer than {MAX_URL_LENGTH} characters.")
    if _has_control_or_space(url):
        raise UnsafeUrl(f"The {what} contains whitespace or control characters.")
    # Browsers read "\" as "/": https://evil.com\@good.com goes to evil.com
    # while urllib sees the host good.com.
    if "\\" in url:
        raise UnsafeUrl(f"The {what} contains a backslash.")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafeUrl(f"The {what} cannot be parsed.") from None
    # Browsers read https:evil.com as https://evil.com where urllib sees a
    # path, so the "//" is required in the text itself.
    if parts.scheme not in ("http", "https") or url[len(parts.scheme) :][:3] != "://":
        raise UnsafeUrl(f"The {what} must be an absolute http or https URL.")
    if "@" in parts.netloc:
        raise UnsafeUrl(f"The {what} must not contain a user name or password.")
    host, port = _split_authority(parts.netloc, what)
    return parts.scheme, host, port, url[len(parts.scheme) + 3 + len(parts.netloc) :]


def _has_control_or_space(url: str) -> bool:
    if _CONTROL_OR_SPACE.search(url):
        return True
    # Categories C* (control, format such as zero-width or bidi overrides,
    # surrogate, private, unassigned) and Z* (spaces, line separators).
    return not url.isascii() and any(
        unicodedata.category(char)[0] in "CZ" for char in url if not char.isascii()
    )


def _split_authority(netloc: str, what: str) -> tuple[str, str]:
    if netloc.startswith("["):
        end = netloc.find("]") + 1
        name, rest = netloc[:end], netloc[end:]
    else:
        name, colon, port = netloc.partition(":")
        rest = colon + port
    if not name:
        raise UnsafeUrl(f"The {what} has no host.")
    if rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:]) and 0 < int(rest[1:]) < 65536):
        raise UnsafeUrl(f"The {what} has an invalid port.")
    host = _normalise_host(name)
    if host is None:
        raise UnsafeUrl(f"The {what} has an invalid host.")
    return host, rest[1:]


def _normalise_host(name: str) -> str | None:
    """Return the canonical form of a DNS name or IP address, or None if it is neither."""
    if name.startswith("["):
        return _ipv6(name[1:-1]) if name.endswith("]") else None
    if ":" in name:
        # Only allow-list patterns get here: a URL's host has its port split off.
        return _ipv6(name)
    name = name.lower()
    if not name.isascii():
        name = _idna(name)
    name = name.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return _ipv4(name)
    return name


def _idna(name: str) -> str:
    if _IDNA_DEVIATIONS.intersection(name):
        return ""
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""


def _ipv4(text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _ipv6(text: str) -> str | None:
    if "%" in text:
        return None
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        return None


def compile_allow_list(patterns: Iterable[str]) -> Callable[[str], bool]:
    """Precompute an allow-list of landing hosts into a predicate for the request path.

    ``example.com`` allows exactly that host. ``*.example.com`` allows its
    subdomains at any depth, but neither ``example.com`` itself nor
    ``badexample.com``. Patterns are normalised like hosts (case, IDNA,
    trailing dot); IP addresses are allowed as exact patterns.

    Returns:
        A function of a host as returned by :func:`check_landing_url`, true
        when the host is allowed.

    Raises:
        ValueError: A pattern is not a host name or IP address, or is a
            wildcard over an IP address or a single label (``*.com``).
    """
    exact: set[str] = set()
    suffixes: list[str] = []
    for pattern in patterns:
        wildcard = pattern.startswith("*.")
        host = _normalise_host(pattern[2:] if wildcard else pattern)
        if host is None:
            raise ValueError(f"allow-list pattern {pattern!r} is not a host name or IP address")
        if not wildcard:
            exact.add(host)
        elif "." not in host or _is_ip(host):
            raise ValueError(
                f"allow-list pattern {pattern!r}: a wildcard needs a domain of two labels or more"
            )
        else:
            suffixes.append("." + host)
    exact_hosts = frozenset(exact)
    suffix_tuple = tuple(suffixes)

    def allowed(host: str) -> bool:
        host = host.lower().removesuffix(".")
        return host in exact_hosts or (not host.startswith(".") and host.endswith(suffix_tuple))

    return allowed


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
