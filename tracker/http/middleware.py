"""Cheap refusals before any routing: oversize URLs and headers, broken encodings.

A hostile or broken request costs a few comparisons and is answered with a
4xx naming the reason; it is counted under the ``_request`` path label.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

import falcon

from tracker.config import ServerConfig
from tracker.intake import Rejected

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: An escape of a byte over 0x7f: only these can break UTF-8 once unescaped.
_HIGH_ESCAPE = re.compile(r"%[89A-Fa-f]")


def valid_query(raw: str) -> bool:
    """Return whether a raw (WSGI, latin-1) query string is well-formed UTF-8 once unescaped."""
    if raw.isascii() and "%" not in raw:
        return True
    if _BAD_ESCAPE.search(raw):
        return False
    if raw.isascii() and not _HIGH_ESCAPE.search(raw):
        return True  # escapes of ASCII bytes only (%20, %3A...): ASCII once unescaped
    try:
        unquote_to_bytes(raw.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True


def valid_path(raw: str) -> bool:
    """Return whether a WSGI ``PATH_INFO`` (already unescaped, latin-1) is UTF-8."""
    if raw.isascii():
        return True
    try:
        raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True


class RequestLimits:
    """Falcon middleware enforcing the ``server`` limits on every request."""

    def __init__(self, server: ServerConfig) -> None:
        self.max_url = server.max_url_length
        self.max_headers = server.max_header_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Refuse the request if it breaks a limit or an encoding rule."""
        env = req.env
        path = env.get("PATH_INFO", "")
        query = env.get("QUERY_STRING", "")
        if len(path) + len(query) > self.max_url:
            self.refuse(414, "uri_too_long", f"The URL is over {self.max_url} characters.")
        header_bytes = sum([len(k) + len(v) for k, v in env.items() if k[:5] == "HTTP_"])
        if header_bytes > self.max_headers:
            self.refuse(
                431,
                "headers_too_large",
                f"The request headers are over {self.max_headers} bytes.",
            )
        if not valid_path(path) or not valid_query(query):
            self.refuse(
                400,
                "invalid_encoding",
                "The URL has a malformed percent-escape or is not UTF-8.",
            )

    @staticmethod
    def refuse(status: int, reason: str, description: str) -> None:
        """Raise the refusal; the central handler answers and counts it under ``_request``."""
        raise Rejected(status, reason, description)
