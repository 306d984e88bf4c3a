"""The checks a billing notice passes before any collector takes it (``BankerCollector.admit``).

A notice the ledger would refuse is better refused while the exchange still
waits for the answer: it sees a 4xx, the refusal is counted and goes to the
rejected stream, and no collector has the event. Two things can be told then:

* the notice's currency is not the campaign's (its own, set with ``tracker
  banker set-budget --currency``, else the configured ``default_currency``);
* its encrypted price token is bound to another auction (a replayed token).

On a ``durable`` path the request already waits, so the campaign's currency
is read and the token bound in one pipelined round trip. On a fast path, or
while Redis does not answer, only what this worker knows is checked (the
campaign's currency as last read; a campaign it never read may have a
currency of its own, so its notice is not refused on a guess); the rest is
decided in the ledger's atomic step and counted there (docs/banker.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from redis.exceptions import RedisClusterException, RedisError

from tracker.plugins import Refused

from . import metrics
from .records import Entry

log = logging.getLogger(__name__)

#: Campaign currencies a worker remembers; past it the memory starts afresh.
MAX_KNOWN = 10_000


class Guard:
    """Refuse a notice in another currency, or with a token bound to another auction."""

    #: What :meth:`check` answers, for the OpenAPI document.
    REFUSALS: ClassVar[dict[str, str]] = {
        "400": "The banker: a billing notice in another currency than its campaign's "
        "(`currency_mismatch`).",
        "409": "The banker: an encrypted price already used by another auction "
        "(`price_token_reused`).",
    }

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.currency = options.default_currency
        self.token_ttl = options.token_ttl
        self._known: dict[str, str] = {}  # campaign -> its currency, as last read

    def check(self, entry: Entry, ledger: Callable[[], Any] | None) -> None:
        """Raise :class:`Refused` for a notice the ledger would not spend.

        Args:
            entry: The notice, reduced.
            ledger: Returns the :class:`~collectors.banker.ledger.Ledger` when a
                round trip is allowed and Redis is up; ``None`` otherwise.
        """
        currency = self._known.get(entry.campaign)
        bound = entry.auction
        if ledger is not None:
            try:
                currency, bound = self._ask(ledger(), entry)
            except (RedisError, RedisClusterException, OSError) as ex:
                # The notice is taken: the ledger's step decides and counts.
                metrics.REDIS_ERRORS.labels(self.name).inc()
                log.debug("banker %s: no answer at admission: %s", self.name, ex)
        if currency is not None and entry.currency != currency:
            raise Refused(
                400,
                "currency_mismatch",
                f"Campaign {entry.campaign} is billed in {currency}, not {entry.currency}.",
            )
        if bound != entry.auction:
            raise Refused(
                409,
                "price_token_reused",
                "This encrypted price was already used by another auction; it is not billed.",
            )

    def _ask(self, ledger: Any, entry: Entry) -> tuple[str | None, str]:
        """Read the campaign's currency and bind the token, in one round trip.

        The currency as the Lua step decides it: the budget's own, else the one
        the campaign's ledger is in (spent before currencies were configured),
        else the default.
        """
        keys = ledger.keys
        base = keys.base(entry.campaign)
        pipe = ledger.client.pipeline(transaction=False)
        pipe.hget(f"{base}:budget", "currency")
        pipe.hget(f"{base}:total", "currency")
        if entry.token:
            pipe.set(keys.token(entry.token), entry.auction, nx=True, ex=self.token_ttl)
            pipe.get(keys.token(entry.token))
        replies = [_text(r) for r in pipe.execute()]
        currency = replies[0] or replies[1] or self.currency
        if len(self._known) >= MAX_KNOWN:
            self._known.clear()
        self._known[entry.campaign] = currency
        held = replies[3] if entry.token else None
        return currency, entry.auction if held is None else held


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value
