"""Request bodies with a ``Content-Encoding``: gzip is inflated, within the body limit.

Only ``gzip`` (and its old name ``x-gzip``) is read; ``identity`` means no
coding. Anything else gets a 415 naming what is accepted: ``deflate``, because
senders disagree on what it is (a zlib stream, as RFC 9110 says, or raw
deflate data, as some clients send) and a body read the wrong way is worse than
a refusal; ``br`` and ``zstd``, which the standard library cannot read; and
codings stacked on one body, which no client the tracker serves sends.

Inflating is bounded like reading: at most ``limit + 1`` bytes are ever
produced, so a gzip bomb (a few kilobytes that inflate to gigabytes) costs the
time to inflate ``limit`` bytes and is answered 413.
"""

from __future__ import annotations

import zlib

from tracker.intake.refusals import Rejected

#: The codings a request body may have; ``identity`` is no coding at all.
ACCEPTED = ("gzip", "x-gzip")
_IDENTITY = "identity"
# zlib's window size with 16 added: a gzip header and trailer around the data.
_GZIP = 16 + zlib.MAX_WBITS


def decode_body(data: bytes, coding: str, limit: int) -> bytes:
    """Return ``data`` decoded from ``Content-Encoding: coding``, at most ``limit`` bytes.

    Raises:
        Rejected: 415 (``unsupported_content_encoding``) for a coding other
            than gzip, 413 (``body_too_large``) when the inflated body is over
            ``limit`` bytes, 400 (``invalid_gzip``) for a body that is not
            gzip or is cut short.
    """
    name = coding.strip().lower()
    if name == _IDENTITY or not name:
        return data
    if name not in ACCEPTED:
        shown = coding.encode("ascii", "backslashreplace").decode()[:40]
        raise Rejected(
            415,
            "unsupported_content_encoding",
            f"The body's Content-Encoding must be gzip (or none), not {shown!r}.",
        )
    return _gunzip(data, limit)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate every gzip member of ``data`` (gzip allows several, one after the other)."""
    out = []
    left = limit + 1
    while True:
        inflater = zlib.decompressobj(_GZIP)
        try:
            chunk = inflater.decompress(data, left)
        except zlib.error:
            raise _corrupt() from None
        out.append(chunk)
        left -= len(chunk)
        if left <= 0:
            raise Rejected(
                413, "body_too_large", f"The body is over the {limit}-byte limit once inflated."
            )
        if not inflater.eof:
            raise _corrupt()
        data = inflater.unused_data
        if not data:
            return b"".join(out)


def _corrupt() -> Rejected:
    return Rejected(400, "invalid_gzip", "The body is not valid gzip, or is cut short.")
