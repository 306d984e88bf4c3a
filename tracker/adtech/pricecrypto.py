"""Encrypted OpenRTB prices: the scheme most exchanges use for ``${AUCTION_PRICE}``.

Keys are decoded once, when the config is loaded; each token then costs two
HMAC-SHA1 copies. Nothing here knows HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from tracker.adtech.errors import NoticeError

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_WEBSAFE_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_STANDARD_ALPHABET = str.maketrans("+/", "-_")
_IV_SIZE = 16
_PRICE_SIZE = 8
_SIGNATURE_SIZE = 4
#: Bytes of a decoded token (the OpenAPI document derives its text length from it).
TOKEN_SIZE = _IV_SIZE + _PRICE_SIZE + _SIGNATURE_SIZE


class PriceCrypto:
    """The price encryption most exchanges use (Google Authorized Buyers' scheme).

    A token is the web-safe base64 of ``iv (16 bytes) || enc_price (8 bytes) ||
    signature (4 bytes)``. The pad is ``HMAC-SHA1(encryption_key, iv)[:8]``;
    the price, an unsigned 64-bit big-endian count of CPM micros, is
    ``enc_price XOR pad``; the signature is
    ``HMAC-SHA1(integrity_key, price || iv)[:4]``.

    Args:
        encryption_key: The exchange's encryption key, raw bytes.
        integrity_key: The exchange's integrity key, raw bytes.

    Raises:
        ValueError: A key is empty.
    """

    __slots__ = ("_encryption", "_integrity")

    def __init__(self, encryption_key: bytes, integrity_key: bytes):
        if not encryption_key or not integrity_key:
            raise ValueError("price encryption and integrity keys must not be empty")
        # Keyed once here; each token only copies the prepared state.
        self._encryption = hmac.new(encryption_key, digestmod="sha1")
        self._integrity = hmac.new(integrity_key, digestmod="sha1")

    @classmethod
    def from_config(cls, encryption_key: str, integrity_key: str) -> PriceCrypto:
        """Build from keys as exchanges hand them out: base64 or hex text.

        A key made only of hex digit pairs is read as hex; anything else as
        base64, web-safe or standard, padding optional. Keys of 32 bytes are
        never ambiguous: their base64 is 43 characters, or 44 ending in ``=``.

        Raises:
            ValueError: A key is empty or neither hex nor base64. The message
                names the key but never shows it.
        """
        return cls(
            _decode_key("encryption key", encryption_key),
            _decode_key("integrity key", integrity_key),
        )

    def decrypt(self, token: str) -> int:
        """Return the price in CPM micros carried by an encrypted token.

        Raises:
            NoticeError: ``bad_price`` when the token is not web-safe base64
                of 28 bytes; ``price_integrity`` when its signature does not
                match, because it was altered or the keys are not the
                exchange's.
        """
        raw = _websafe_b64decode(token)
        if raw is None:
            raise NoticeError("bad_price", "encrypted price is not web-safe base64")
        if len(raw) != TOKEN_SIZE:
            raise NoticeError(
                "bad_price",
                f"encrypted price is {len(raw)} bytes, expected {TOKEN_SIZE}: "
                "the value is truncated or is not a price token",
            )
        iv = raw[:_IV_SIZE]
        price = _xor(raw[_IV_SIZE : _IV_SIZE + _PRICE_SIZE], self._pad(iv))
        if not hmac.compare_digest(self._signature(price, iv), raw[-_SIGNATURE_SIZE:]):
            raise NoticeError(
                "price_integrity",
                "encrypted price failed its integrity check: the token was altered "
                "or the configured price keys are not the exchange's",
            )
        return int.from_bytes(price, "big")

    def encrypt(self, cpm_micros: int, iv: bytes) -> str:
        """Return the token for a price, unpadded, as an exchange would send it.

        For tests and exchange simulators: a real exchange picks a fresh
        ``iv`` for every token (Google puts a timestamp and a server id in it).

        Raises:
            ValueError: ``iv`` is not 16 bytes or the price does not fit an
                unsigned 64-bit integer.
        """
        if len(iv) != _IV_SIZE:
            raise ValueError(f"iv must be {_IV_SIZE} bytes, got {len(iv)}")
        if not 0 <= cpm_micros < 1 << 64:
            raise ValueError(f"price {cpm_micros} does not fit an unsigned 64-bit integer")
        price = cpm_micros.to_bytes(_PRICE_SIZE, "big")
        token = iv + _xor(price, self._pad(iv)) + self._signature(price, iv)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def _pad(self, iv: bytes) -> bytes:
        mac = self._encryption.copy()
        mac.update(iv)
        return mac.digest()[:_PRICE_SIZE]

    def _signature(self, price: bytes, iv: bytes) -> bytes:
        mac = self._integrity.copy()
        mac.update(price + iv)
        return mac.digest()[:_SIGNATURE_SIZE]


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def token_digest(token: str) -> str:
    """Name a token by its bytes, so that its padded and unpadded spellings are one token.

    The banker remembers tokens by this digest (docs/banker.md); nothing is
    read from the IV. ``token`` must be one :meth:`PriceCrypto.decrypt` accepted.
    """
    return hashlib.blake2b(_websafe_b64decode(token) or b"", digest_size=12).hexdigest()


def _websafe_b64decode(text: str) -> bytes | None:
    # base64.urlsafe_b64decode() silently skips characters outside the
    # alphabet, so the text is checked first.
    if not _WEBSAFE_B64.fullmatch(text):
        return None
    body = text.rstrip("=")
    padded = body + "=" * (-len(body) % 4)
    if len(body) % 4 == 1 or text not in (body, padded):
        return None
    return base64.urlsafe_b64decode(padded)


def _decode_key(name: str, text: str) -> bytes:
    text = text.strip()
    if not text:
        raise ValueError(f"price {name} is empty")
    if _HEX.fullmatch(text):
        return bytes.fromhex(text)
    key = _websafe_b64decode(text.translate(_STANDARD_ALPHABET))
    if not key:
        raise ValueError(f"price {name} is neither hex nor base64")
    return key
