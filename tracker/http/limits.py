"""Request limits: cheap refusals before any routing, and per-client rate limits.

:class:`RequestLimits` (Falcon middleware) refuses oversize URLs and header
blocks and broken encodings before routing: a hostile or broken request costs
a few comparisons and is answered with a 4xx naming the reason, counted under
the ``_request`` path label.

:class:`ClientLimiter` is a token bucket per client address or key, in each
worker. The first line of defence is the ingress (the Helm chart offers NGINX
ingress annotations); this one holds where there is no ingress, or for a key
the ingress cannot see, such as an exchange's seat. Each worker keeps its own
buckets, so with N workers a client gets up to N times the configured rate.
Memory is bounded: at most ``max_clients`` buckets, the least recently seen
dropped first.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

import falcon

from tracker.config import RateLimitConfig, ServerConfig
from tracker.http.clientip import ClientIp
from tracker.intake.refusals import Rejected

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


class ClientLimiter:
    """Refuse a client over its rate with 429 and ``Retry-After``."""

    def __init__(
        self,
        config: RateLimitConfig,
        client_ip: ClientIp,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = config.per_second
        self.burst = float(config.burst)
        self.max_clients = config.max_clients
        self.client_ip = client_ip
        self.clock = clock
        source, _, name = config.key.partition(":")
        self.source, self.name = source, name
        #: key -> (tokens left, time of the last refill)
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def key(self, req: falcon.Request) -> str:
        """Return the client's key: the configured parameter or header, else its address."""
        if self.source == "query":
            value = req.params.get(self.name)
            if isinstance(value, str) and value:
                return "q:" + value
        elif self.source == "header":
            value = req.get_header(self.name)
            if value:
                return "h:" + value
        return self.client_ip.resolve(req.remote_addr, req.get_header("X-Forwarded-For")) or ""

    def check(self, req: falcon.Request) -> None:
        """Take one token from the client's bucket, or raise a 429 :class:`Rejected`."""
        key = self.key(req)
        now = self.clock()
        tokens, last = self.buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self.buckets[key] = (tokens - 1.0, now)
            if len(self.buckets) > self.max_clients:
                self.buckets.popitem(last=False)
            return
        self.buckets[key] = (tokens, now)
        wait = max(1, math.ceil((1.0 - tokens) / self.rate))
        raise Rejected(
            429,
            "rate_limited",
            f"Over {self.rate:g} requests per second; retry in {wait} s.",
            retry_after=wait,
        )


def limited(resource: object, limiter: ClientLimiter) -> object:
    """Make every responder (``on_get``...) of ``resource`` check ``limiter`` first."""
    for name in [n for n in dir(resource) if n.startswith("on_")]:
        setattr(resource, name, _checked(getattr(resource, name), limiter.check))
    return resource


def _checked(responder: Callable, check: Callable[[falcon.Request], None]) -> Callable:
    def responder_with_limit(req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        check(req)
        responder(req, resp, **params)

    return responder_with_limit
