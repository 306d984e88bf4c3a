"""From a Falcon request to raw field values and request context."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import falcon
from falcon.uri import parse_query_string

from tracker.http.clientip import ClientIp
from tracker.http.encoding import decode_body
from tracker.intake.fields import numbers
from tracker.intake.fields.schema import Lookup
from tracker.intake.privacy import FieldCopy, url_without_query
from tracker.intake.refusals import Rejected

FORM = "application/x-www-form-urlencoded"
#: ``Sec-GPC`` (Global Privacy Control) in the WSGI environ: read there, not through
#: ``get_header``, which costs several times more on a path that asks every request.
GPC_HEADER = "HTTP_SEC_GPC"
#: How deep a JSON body may nest; deeper ones are refused before ``json.loads`` sees them.
MAX_JSON_DEPTH = 32
# Bytes other than brackets are deleted, and braces read as square brackets.
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def read_body(req: falcon.Request, limit: int) -> Any:
    """Read a JSON or form body within ``limit`` bytes; ``{}`` when there is none.

    A body comes with a ``Content-Length`` or chunked (``Transfer-Encoding:
    chunked``, no length): the server (meinheld, gunicorn) undoes the chunking
    and marks the end of the input (``wsgi.input_terminated``), so it is read
    to its end, at most ``limit + 1`` bytes. A ``Content-Encoding: gzip`` body
    is inflated to at most ``limit`` bytes too (:func:`~tracker.http.encoding.decode_body`).
    JSON numbers keep their text (:func:`~tracker.intake.fields.numbers.loads`).

    Raises:
        Rejected: 413 over the limit (from ``Content-Length`` before reading),
            415 for another media type or content coding, 400 for broken JSON,
            gzip or encoding.
    """
    data = _read(req, limit)
    if not data:
        return {}
    coding = req.env.get("HTTP_CONTENT_ENCODING")
    if coding is not None:
        data = decode_body(data, coding, limit)
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type == FORM:
        return parse_query_string(_decode(data), keep_blank=False)
    if media_type not in ("application/json", ""):
        raise Rejected(
            415,
            "unsupported_media_type",
            f"The body must be application/json or {FORM}.",
        )
    if too_deep(data):
        raise Rejected(400, "json_too_deep", f"The body nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return numbers.loads(data)
    except ValueError:
        raise Rejected(400, "invalid_json", "The body is not valid JSON.") from None


def _read(req: falcon.Request, limit: int) -> bytes:
    """Return the body as sent, at most ``limit`` bytes, else raise the 413."""
    length = req.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    if length is not None:
        data = req.bounded_stream.read(limit + 1)
    elif req.env.get("wsgi.input_terminated"):
        data = req.stream.read(limit + 1)
    elif "HTTP_TRANSFER_ENCODING" in req.env:
        # A server that does not mark the end of a chunked body: reading could block, and
        # taking the body as empty would drop it without a word.
        raise Rejected(411, "length_required", "The body needs a Content-Length here.")
    else:
        return b""
    if len(data) > limit:
        raise _too_large(limit)
    return data


def too_deep(data: bytes) -> bool:
    """Return whether JSON ``data`` nests deeper than :data:`MAX_JSON_DEPTH`.

    ``json.loads`` recurses once per level and raises ``RecursionError`` on
    50,000 ``[``, so depth is bounded first, with C-speed bytes operations
    only: a body with no more brackets than the limit passes at once;
    otherwise escaped backslashes and quotes are dropped, the text inside
    strings is dropped, every other byte but brackets is dropped, and the
    innermost pairs are peeled one level per pass, at most the limit's number
    of passes. Brackets that do not pair count as too deep (such a body is not
    JSON either way).
    """
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return False
    outside = b"".join(data.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2])
    brackets = outside.translate(_BRACKETS, _NOT_BRACKETS)
    for _ in range(MAX_JSON_DEPTH):
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            break
        brackets = peeled
    return bool(brackets)


def _too_large(limit: int) -> Rejected:
    return Rejected(413, "body_too_large", f"The body is over the {limit}-byte limit.")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "invalid_encoding", "The body is not UTF-8.") from None


def request_copy(
    req: falcon.Request, limit: int, fields: FieldCopy, params: dict[str, str] | None = None
) -> dict[str, Any]:
    """Return a privacy-safe copy of ``req`` for the rejected-requests stream.

    The path's declared fields as :class:`~tracker.intake.privacy.FieldCopy`
    copies them (from the query, the route ``params`` and the body if the
    resource read it), the names of the parameters no field reads, and no
    address, no cookie and no header but the user agent and the referer
    (without its query, fragment and user part); every value is cut to
    ``limit`` characters.
    """
    body = getattr(req.context, "body", None)
    lookup = request_lookup(req, params or {}, body if isinstance(body, dict) else {})
    referer = req.referer
    return {
        "method": req.method,
        "path": req.path[:limit],
        **fields(lookup, req.params, body, limit),
        "user_agent": _cut(req.user_agent, limit),
        "referer": None if referer is None else url_without_query(referer)[:limit],
        "content_type": _cut(req.content_type, limit),
        # As sent: Falcon's content_length raises on a malformed header.
        "content_length": _cut(req.env.get("CONTENT_LENGTH"), limit),
    }


def _cut(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def request_lookup(req: falcon.Request, params: dict[str, str], body: dict[str, Any]) -> Lookup:
    """Return ``lookup(source, key)`` over the request's query, body, headers, cookies, path."""
    # Cookies are parsed only for a path with a cookie field (a browser sends them all).
    sources = {"query": req.params, "body": body, "path": params}

    def lookup(source: str, key: str) -> Any:
        if source == "header":
            return req.get_header(key)
        value = (req.cookies if source == "cookie" else sources[source]).get(key)
        return value[0] if isinstance(value, list) and value else value

    return lookup


class ContextReader:
    """Build an event's request context: client IP, user agent, referer.

    Args:
        client_ip: Resolves the caller's address through the trusted proxies.
        device_headers: Whether the path takes device headers at all.
        believed: The callers that may send them: trusted proxies and
            configured ad inserters (see :func:`device_header_callers`).
        client_hints: Whether to read the ``Sec-CH-UA-*`` client hints into
            ``context["client_hints"]`` for the path's ``user_agent``
            preprocessor, which takes them out of the context again.
    """

    def __init__(
        self,
        client_ip: ClientIp,
        device_headers: bool,
        believed: ClientIp | None = None,
        client_hints: bool = False,
    ) -> None:
        self.client_ip = client_ip
        self.believed = believed
        self.device_headers = device_headers and believed is not None and bool(believed.trusted)
        self.client_hints = client_hints

    def __call__(self, req: falcon.Request) -> dict[str, str | None]:
        """Return the context of ``req``.

        With ``device_headers`` (server-side callers such as SSAI or an ad
        server), ``X-Device-IP`` and ``X-Device-User-Agent`` replace the
        caller's own IP and user agent when present and valid, and only when
        the caller is a trusted proxy or a configured ad inserter: from anyone
        else they would let a client choose its address and user agent, past
        the trusted proxies and the bot filter.
        """
        ip = self.client_ip.resolve(req.remote_addr, req.get_header("X-Forwarded-For"))
        user_agent = req.user_agent
        device_agent = None
        if self.device_headers and ip is not None and self.believed.is_trusted(ip):
            device_ip = _valid_ip(req.get_header("X-Device-IP"))
            ip = device_ip or ip
            device_agent = req.get_header("X-Device-User-Agent")
            user_agent = device_agent or user_agent
        context = {"ip": ip, "user_agent": user_agent, "referer": req.referer}
        # The hints describe the caller: not the device when an SSAI server named it.
        if self.client_hints and device_agent is None:
            hints = _client_hints(req.env)
            if hints is not None:
                context["client_hints"] = hints
        return context


def device_header_callers(trusted_proxies: Iterable[str], ad_inserters: Iterable[str]) -> ClientIp:
    """Return the callers whose device headers are believed: trusted proxies and ad inserters."""
    return ClientIp((*trusted_proxies, *ad_inserters))


def _client_hints(env: dict) -> dict[str, str] | None:
    """Return a request's platform hints, or None when it sent neither platform nor mobile.

    ``Sec-CH-UA-Platform`` and ``Sec-CH-UA-Mobile`` come by default from
    Chromium browsers; ``Sec-CH-UA-Platform-Version`` only where the page
    asked for it (``Accept-CH`` and, for a third-party tracker, a
    ``Permissions-Policy`` delegating it).
    """
    platform = env.get("HTTP_SEC_CH_UA_PLATFORM")
    mobile = env.get("HTTP_SEC_CH_UA_MOBILE")
    if platform is None and mobile is None:
        return None
    hints = {
        "platform": platform,
        "platform_version": env.get("HTTP_SEC_CH_UA_PLATFORM_VERSION"),
        "mobile": mobile,
    }
    return {k: v[:64] for k, v in hints.items() if v is not None}


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None
