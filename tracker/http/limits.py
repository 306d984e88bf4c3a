"""Per-client request limits: a token bucket per client address or key, in each worker.

The first line of defence is the ingress (the Helm chart offers NGINX
ingress annotations); this one holds where there is no ingress, or for a key
the ingress cannot see, such as an exchange's seat. Each worker keeps its own
buckets, so with N workers a client gets up to N times the configured rate.
Memory is bounded: at most ``max_clients`` buckets, the least recently seen
dropped first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

import falcon

from tracker.config import RateLimitConfig
from tracker.http.clientip import ClientIp
from tracker.intake import Rejected


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
