"""From a Falcon request to raw field values and request context."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import falcon
from falcon.uri import parse_query_string

from tracker.fields import Lookup
from tracker.http.clientip import ClientIp
from tracker.intake import Rejected

FORM = "application/x-www-form-urlencoded"


def read_body(req: falcon.Request, limit: int) -> Any:
    """Read a JSON or form body within ``limit`` bytes; ``{}`` when there is none.

    Raises:
        Rejected: 413 over the limit (from ``Content-Length`` before reading),
            415 for another media type, 400 for broken JSON or encoding.
    """
    length = req.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit)
    if not data:
        return {}
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type == FORM:
        return parse_query_string(_decode(data), keep_blank=False)
    if media_type not in ("application/json", ""):
        raise Rejected(
            415,
            "unsupported_media_type",
            f"The body must be application/json or {FORM}.",
        )
    try:
        return json.loads(data)
    except ValueError:
        raise Rejected(400, "invalid_json", "The body is not valid JSON.") from None


def _too_large(limit: int) -> Rejected:
    return Rejected(413, "body_too_large", f"The body is over the {limit}-byte limit.")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "invalid_encoding", "The body is not UTF-8.") from None


def request_lookup(req: falcon.Request, params: dict[str, str], body: dict[str, Any]) -> Lookup:
    """Return ``lookup(source, key)`` over the request's query, body, headers, cookies, path."""
    sources = {"query": req.params, "body": body, "cookie": req.cookies, "path": params}

    def lookup(source: str, key: str) -> Any:
        if source == "header":
            return req.get_header(key)
        value = sources[source].get(key)
        return value[0] if isinstance(value, list) and value else value

    return lookup


class ContextReader:
    """Build an event's request context: client IP, user agent, referer."""

    def __init__(self, client_ip: ClientIp, device_headers: bool) -> None:
        self.client_ip = client_ip
        self.device_headers = device_headers

    def __call__(self, req: falcon.Request) -> dict[str, str | None]:
        """Return the context of ``req``.

        With ``device_headers`` (server-side callers such as SSAI or an ad
        server), ``X-Device-IP`` and ``X-Device-User-Agent`` replace the
        caller's own IP and user agent when present and valid.
        """
        ip = self.client_ip.resolve(req.remote_addr, req.get_header("X-Forwarded-For"))
        user_agent = req.user_agent
        if self.device_headers:
            device_ip = _valid_ip(req.get_header("X-Device-IP"))
            ip = device_ip or ip
            user_agent = req.get_header("X-Device-User-Agent") or user_agent
        return {"ip": ip, "user_agent": user_agent, "referer": req.referer}


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None
