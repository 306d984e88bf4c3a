"""Signed landing URLs for click redirects, and the checks that keep them safe.

A click URL carries the landing URL and, when ``tracker sign-url`` built it, a
signature over it::

    https://trk.example/click?cid=c1&url=https%3A%2F%2Fa.example%2F&exp=1767225600&kid=k2&sig=...

The click path redirects only to a landing URL that is signed with one of the
configured keys (several at once, so that keys can rotate) and not expired, or
whose host is on the configured allow-list. Everything else is refused: an open
redirect lends the tracker's domain to phishing.

The signature is the HMAC-SHA256, in web-safe base64 without padding, of::

    b"v1\\n" + kid + b"\\n" + exp + b"\\n" + url

in UTF-8, where ``exp`` is the decimal unix time, or empty when the URL does not
expire, and ``url`` is the exact landing URL string with its macros unfilled.
A key id cannot hold a newline and ``exp`` is digits only, so no field can be
shifted into another.

On a click, verify the raw ``url`` parameter, then fill its macros, then run
:func:`check_landing_url` on the result and match the allow-list against the
host it returns: a macro value can change the URL, never the signature.
Nothing here knows HTTP; keys and allow-lists are compiled once at start-up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote, urlencode, urlsplit

SIGNATURE_VERSION = b"v1"
MIN_SECRET_BYTES = 16
MAX_URL_LENGTH = 2048
#: Expiries have at most 19 digits, to fit a signed 64-bit integer wherever they are stored.
MAX_EXPIRES = 10**19
#: Query parameters that carry the signature; a click URL's own parameters cannot use them.
SIGNATURE_PARAMS = frozenset({"url", "exp", "kid", "sig"})

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KEY_ID_RULE = "1 to 32 characters among A-Z a-z 0-9 _ -"
_SECRET = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# 32 bytes of digest are 43 characters of base64, plus one "=" when padded.
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}=?")
_EXPIRY = re.compile(r"[0-9]{1,19}")
_MACRO = re.compile(r"\{([a-z][a-z0-9_]*)\}")
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


class SignatureError(ValueError):
    """A landing URL's signature is missing, unknown, wrong or expired.

    Attributes:
        reason: ``missing_signature``, ``unknown_key``, ``bad_expiry``,
            ``bad_signature`` or ``expired``; short enough for a metrics label.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnsafeUrl(ValueError):
    """A URL the tracker will not redirect to, whatever its signature.

    Attributes:
        reason: Always ``invalid_landing_url``.
    """

    reason = "invalid_landing_url"


def parse_keys(text: str) -> dict[str, bytes]:
    """Parse signing keys from the ``kid1:secret1,kid2:secret2`` format of the environment.

    Secrets are web-safe base64, padding optional, of at least 16 bytes. The
    order is kept: the last key is the newest and signs by default.

    Raises:
        ValueError: The text is blank or an entry is malformed. The message
            names the entry by position, and by key id once that is valid,
            but never quotes the secret.
    """
    if not text.strip():
        raise ValueError("no signing keys: expected 'kid:secret[,kid:secret...]'")
    keys: dict[str, bytes] = {}
    for number, entry in enumerate(text.split(","), start=1):
        kid, colon, secret = entry.strip().partition(":")
        if not colon:
            # Without a colon the entry may be a bare secret: do not quote it.
            raise ValueError(f"signing key entry {number} is not 'kid:secret'")
        if not _KEY_ID.fullmatch(kid):
            raise ValueError(f"signing key entry {number}: the key id must be {_KEY_ID_RULE}")
        if kid in keys:
            raise ValueError(f"signing key entry {number}: duplicate key id {kid!r}")
        keys[kid] = _decode_secret(secret, f"signing key entry {number} ({kid!r})")
    return keys


def _decode_secret(secret: str, where: str) -> bytes:
    # urlsafe_b64decode silently skips characters outside the alphabet, so the
    # text is matched first: a typo must fail, not shorten the key.
    if not _SECRET.fullmatch(secret) or ("=" in secret and len(secret) % 4):
        raise ValueError(f"{where}: the secret is not web-safe base64")
    body = secret.rstrip("=")
    try:
        decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except binascii.Error:
        raise ValueError(f"{where}: the secret is not web-safe base64") from None
    if len(decoded) < MIN_SECRET_BYTES:
        raise ValueError(f"{where}: the secret must decode to at least {MIN_SECRET_BYTES} bytes")
    return decoded


class UrlSigner:
    """Signs landing URLs and verifies their signatures with a set of keys.

    Every configured key verifies; one, the newest by default, signs. To
    rotate, add the new key last, let ad servers switch to URLs signed with
    it, then remove the old key: its URLs then fail.
    """

    def __init__(self, keys: Mapping[str, bytes], default_key_id: str | None = None) -> None:
        """Precompute one HMAC state per key.

        Args:
            keys: Secret per key id, in the order of the config.
            default_key_id: The key that signs when none is named; the last
                of ``keys`` when None.

        Raises:
            ValueError: No keys, a malformed key id, a secret under 16 bytes
                or an unknown ``default_key_id``.
        """
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._macs: dict[str, hmac.HMAC] = {}
        for kid, secret in keys.items():
            if not _KEY_ID.fullmatch(kid):
                raise ValueError(f"a key id is not {_KEY_ID_RULE}")
            if len(secret) < MIN_SECRET_BYTES:
                raise ValueError(f"signing key {kid!r} is shorter than {MIN_SECRET_BYTES} bytes")
            self._macs[kid] = hmac.new(secret, digestmod=hashlib.sha256)
        if default_key_id is None:
            default_key_id = next(reversed(self._macs))
        elif default_key_id not in self._macs:
            raise ValueError(f"default key id {default_key_id!r} is not among the keys")
        self.default_key_id = default_key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The configured key ids, oldest first."""
        return tuple(self._macs)

    def sign(
        self, url: str, expires: int | None = None, key_id: str | None = None
    ) -> dict[str, str]:
        """Sign ``url`` and return the query parameters that carry it.

        Args:
            url: The landing URL exactly as the click URL will carry it once
                decoded, macros unfilled.
            expires: Unix time from which the signature is refused; None for
                never.
            key_id: The key to sign with; the default key when None.

        Returns:
            ``url``, ``exp`` (only when ``expires`` is given), ``kid`` and ``sig``.

        Raises:
            ValueError: ``key_id`` is unknown, or ``expires`` is not an integer
                from 0 to ``MAX_EXPIRES - 1``.
        """
        kid = self.default_key_id if key_id is None else key_id
        if kid not in self._macs:
            raise ValueError(f"unknown key id {kid!r}")
        params = {"url": url}
        exp = ""
        if expires is not None:
            if isinstance(expires, bool) or not isinstance(expires, int):
                raise ValueError("expires must be an integer")
            if not 0 <= expires < MAX_EXPIRES:
                raise ValueError(f"expires must be from 0 to {MAX_EXPIRES - 1}")
            exp = params["exp"] = str(expires)
        params["kid"] = kid
        params["sig"] = self._signature(kid, exp, url)
        return params

    def verify(
        self, url: str, sig: str | None, kid: str | None, exp: str | None, now: float
    ) -> None:
        """Check that ``url`` is signed by a configured key and not expired.

        Args:
            url: The ``url`` parameter, decoded, macros unfilled.
            sig: The ``sig`` parameter, with or without base64 padding.
            kid: The ``kid`` parameter; None tries every key.
            exp: The ``exp`` parameter; None when the URL does not expire.
            now: The current unix time.

        Raises:
            SignatureError: ``missing_signature`` (``sig`` absent or empty),
                ``unknown_key`` (``kid`` is not configured), ``bad_expiry``
                (``exp`` is not 1 to 19 ASCII digits), ``bad_signature`` (no
                key makes ``sig``) or ``expired`` (``now`` is ``exp`` or later).
                The signature is checked before the expiry, so a forged URL
                never earns ``expired``.
        """
        if not sig:
            raise SignatureError("missing_signature", "The landing URL is not signed.")
        if kid is not None and kid not in self._macs:
            raise SignatureError("unknown_key", "The landing URL is signed with an unknown key.")
        if exp is not None and not _EXPIRY.fullmatch(exp):
            raise SignatureError("bad_expiry", "The expiry is not a unix time in seconds.")
        if not self._matches(url, sig, kid, exp or ""):
            raise SignatureError("bad_signature", "The landing URL's signature does not match.")
        if exp is not None and now >= int(exp):
            raise SignatureError("expired", "The signed landing URL has expired.")

    def _matches(self, url: str, sig: str, kid: str | None, exp: str) -> bool:
        if not _SIGNATURE.fullmatch(sig):
            return False
        given = sig[:43].encode("ascii")
        candidates = self._macs if kid is None else (kid,)
        return any(
            hmac.compare_digest(self._signature(candidate, exp, url).encode("ascii"), given)
            for candidate in candidates
        )

    def _signature(self, kid: str, exp: str, url: str) -> str:
        mac = self._macs[kid].copy()
        # surrogatepass: a lone surrogate from a sloppy decoder must fail the
        # comparison, not raise UnicodeEncodeError on the request path.
        url_bytes = url.encode("utf-8", "surrogatepass")
        mac.update(b"\n".join((SIGNATURE_VERSION, kid.encode(), exp.encode(), url_bytes)))
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


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
    return _split_url(url, "landing URL")[1]


def to_location(url: str) -> str:
    """Return ``url`` in ASCII for a ``Location`` header, or raise :class:`UnsafeUrl`.

    WSGI headers are Latin-1, so the host becomes its IDNA form and other
    non-ASCII characters are percent-encoded as UTF-8, as a browser would do.
    An ASCII URL comes back unchanged.
    """
    scheme, host, port, rest = _split_url(url, "landing URL")
    if url.isascii():
        return url
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{quote(rest, safe=_PRINTABLE_ASCII)}"


def _split_url(url: str, what: str) -> tuple[str, str, str, str]:
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


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Return whether ``host`` matches one of the allow-list ``patterns``.

    See :func:`compile_allow_list`, which the request path should use instead.
    """
    return compile_allow_list(patterns)(host)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def fill_macros(template: str, values: Mapping[str, str | int | None]) -> str:
    """Replace each ``{name}`` macro in ``template`` with its URL-encoded value.

    Values are percent-encoded as UTF-8 with no character kept safe, so a value
    cannot add a path, query or fragment. It can still spell part of a host
    (letters, digits, ``.`` and ``-`` pass through): check the filled URL. An
    unknown macro or a None value becomes empty; text that is not a macro
    (``{``, ``{Not-A-Macro}``) is kept.
    """

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return "" if value is None else quote(str(value), safe="")

    return _MACRO.sub(replace, template)


def build_click_url(
    base: str,
    landing: str,
    params: Mapping[str, str],
    signer: UrlSigner,
    ttl: int | None,
    now: float,
) -> str:
    """Build a signed click URL for ad servers, as ``tracker sign-url`` prints it.

    Args:
        base: The click path's absolute URL, without query or fragment.
        landing: The landing URL, macros unfilled.
        params: The click's other query parameters (campaign id...), in order.
        signer: Signs with its default key.
        ttl: Seconds from ``now`` during which the signature is accepted;
            None for no expiry.
        now: The current unix time.

    Returns:
        ``base?params&url=...&exp=...&kid=...&sig=...``, every value
        percent-encoded (a space as ``%20``, never ``+``).

    Raises:
        UnsafeUrl: ``base`` or ``landing`` fails :func:`check_landing_url`, for
            instance because a macro stands in the landing URL's host.
        ValueError: ``base`` has a query or fragment, a parameter takes the
            name of a signature parameter, or ``ttl`` is not positive.
    """
    _split_url(base, "click URL base")
    if "?" in base or "#" in base:
        raise ValueError("The click URL base must not have a query or fragment.")
    check_landing_url(landing)
    reserved = SIGNATURE_PARAMS.intersection(params)
    if reserved:
        raise ValueError(f"Parameters reserved for the signature: {', '.join(sorted(reserved))}.")
    expires = None
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise ValueError("The ttl must be a positive whole number of seconds.")
        expires = int(now) + ttl
    query = [*params.items(), *signer.sign(landing, expires).items()]
    return f"{base}?{urlencode(query, quote_via=quote)}"
