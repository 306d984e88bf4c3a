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

With ``signature_scope: query`` the signature covers every query parameter of
the click but ``sig`` (the ad ids, which choose the derived event id, as well as
the landing URL): ``b"v2\n" + kid + b"\n" + exp + b"\n" + canonical`` where
``canonical`` (:func:`canonical_query`) is every ``name=value`` pair but
``sig``, ``kid`` and ``exp``, each percent-encoded as UTF-8 with nothing kept
safe, sorted, joined by ``&``.

On a click, verify the raw ``url`` parameter, then fill its macros
(:mod:`tracker.adtech.clickurl`), then run
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
from collections.abc import Iterable, Mapping
from urllib.parse import quote

SIGNATURE_VERSION = b"v1"
QUERY_SIGNATURE_VERSION = b"v2"
#: What a signature covers: the landing URL, or every query parameter but ``sig``.
SCOPES = ("url", "query")
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
        kid, exp = self._key_and_expiry(expires, key_id)
        params = {"url": url, **({"exp": exp} if exp else {}), "kid": kid}
        params["sig"] = self._signature(kid, exp, url)
        return params

    def sign_query(
        self, params: Mapping[str, str], expires: int | None = None, key_id: str | None = None
    ) -> dict[str, str]:
        """Sign every query parameter of a click (scope ``query``).

        Returns:
            ``params`` followed by ``exp`` (only when ``expires`` is given),
            ``kid`` and ``sig``.

        Raises:
            ValueError: As :meth:`sign`.
        """
        kid, exp = self._key_and_expiry(expires, key_id)
        payload = canonical_query(params.items())
        sig = self._signature(kid, exp, payload, QUERY_SIGNATURE_VERSION)
        return {**params, **({"exp": exp} if exp else {}), "kid": kid, "sig": sig}

    def _key_and_expiry(self, expires: int | None, key_id: str | None) -> tuple[str, str]:
        kid = self.default_key_id if key_id is None else key_id
        if kid not in self._macs:
            raise ValueError(f"unknown key id {kid!r}")
        if expires is None:
            return kid, ""
        if isinstance(expires, bool) or not isinstance(expires, int):
            raise ValueError("expires must be an integer")
        if not 0 <= expires < MAX_EXPIRES:
            raise ValueError(f"expires must be from 0 to {MAX_EXPIRES - 1}")
        return kid, str(expires)

    def verify_query(self, params: Mapping[str, str | list[str]], now: float) -> str:
        """Check the signature of a click's whole query (scope ``query``).

        Args:
            params: The decoded query parameters; a repeated one as a list.
            now: The current unix time.

        Returns:
            The id of the key that made the signature.

        Raises:
            SignatureError: As :meth:`verify`; a parameter added, removed or
                changed after signing gives ``bad_signature``.
        """
        fields = {k: _single(params.get(k)) for k in ("sig", "kid", "exp")}
        pairs = [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])]
        return self.verify(
            canonical_query(pairs), **fields, now=now, version=QUERY_SIGNATURE_VERSION
        )

    def verify(
        self,
        url: str,
        sig: str | None,
        kid: str | None,
        exp: str | None,
        now: float,
        version: bytes = SIGNATURE_VERSION,
    ) -> str:
        """Check that ``url`` is signed by a configured key and not expired.

        Args:
            url: The ``url`` parameter, decoded, macros unfilled.
            sig: The ``sig`` parameter, with or without base64 padding.
            kid: The ``kid`` parameter; None tries every key.
            exp: The ``exp`` parameter; None when the URL does not expire.
            now: The current unix time.
            version: The message format; :meth:`verify_query` passes ``v2``.

        Returns:
            The id of the key that made the signature (with ``kid`` None, the
            one that matched).

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
        signer = self._signer(url, sig, kid, exp or "", version)
        if signer is None:
            raise SignatureError("bad_signature", "The landing URL's signature does not match.")
        if exp is not None and now >= int(exp):
            raise SignatureError("expired", "The signed landing URL has expired.")
        return signer

    def _signer(self, url: str, sig: str, kid: str | None, exp: str, version: bytes) -> str | None:
        """Return the id of the key that makes ``sig``, or None."""
        if not _SIGNATURE.fullmatch(sig):
            return None
        given = sig[:43].encode("ascii")
        for candidate in self._macs if kid is None else (kid,):
            expected = self._signature(candidate, exp, url, version).encode("ascii")
            if hmac.compare_digest(expected, given):
                return candidate
        return None

    def _signature(self, kid: str, exp: str, url: str, version: bytes = SIGNATURE_VERSION) -> str:
        mac = self._macs[kid].copy()
        # surrogatepass: a lone surrogate from a sloppy decoder must fail the
        # comparison, not raise UnicodeEncodeError on the request path.
        url_bytes = url.encode("utf-8", "surrogatepass")
        mac.update(b"\n".join((version, kid.encode(), exp.encode(), url_bytes)))
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Return the text a ``query``-scope signature covers: every pair but the signature's own.

    ``kid`` and ``exp`` are left out because the message carries them already.
    """
    return "&".join(
        sorted(
            f"{quote(k, safe='')}={quote(v, safe='')}"
            for k, v in pairs
            if k not in ("sig", "kid", "exp")
        )
    )


def _single(value: str | list[str] | None) -> str | None:
    return value[0] if isinstance(value, list) and value else value or None
