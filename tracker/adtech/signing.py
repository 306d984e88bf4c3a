"""Signed landing URLs for click redirects: keys, signatures, macros, click URLs.

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
:func:`tracker.adtech.landing.check_landing_url` on the result and match the
allow-list against the host it returns: a macro value can change the URL, never
the signature. Nothing here knows HTTP; keys are parsed once at start-up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from tracker.adtech.landing import check_landing_url, split_url

SIGNATURE_VERSION = b"v1"
MIN_SECRET_BYTES = 16
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


class SignatureError(ValueError):
    """A landing URL's signature is missing, unknown, wrong or expired.

    Attributes:
        reason: ``missing_signature``, ``unknown_key``, ``bad_expiry``,
            ``bad_signature`` or ``expired``; short enough for a metrics label.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


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


def macro_in_host(template: str) -> bool:
    """Return whether a macro stands in the authority (host, port) of a landing URL template.

    The signature covers the template, not the filled URL, so whoever fills
    such a macro chooses the host: the click must then pass the allow-list
    even when signed.
    """
    authority = template.partition("://")[2]
    for end in "/?#":
        authority = authority.partition(end)[0]
    return _MACRO.search(authority) is not None


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
        UnsafeUrl: ``base`` or ``landing`` fails
            :func:`~tracker.adtech.landing.check_landing_url`, for instance
            because a macro stands in the landing URL's host.
        ValueError: ``base`` has a query or fragment, a parameter takes the
            name of a signature parameter, or ``ttl`` is not positive.
    """
    split_url(base, "click URL base")
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
