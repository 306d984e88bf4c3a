"""The checks a billing notice passes before any collector takes it (``BankerCollector.admit``).

A notice the ledger would refuse is better refused while the exchange still
waits for the answer: it sees a 4xx, the refusal is counted and goes to the
rejected stream, and no collector has the event. Two things can be told then,
from what the worker holds, without a round trip on the request thread:

* the notice's currency is not the campaign's (its own, set with ``tracker
  banker set-budget --currency``, else the configured ``default_currency``):
  the worker keeps a copy of every configured currency, refreshed once a
  second on the outbox's thread (currencies.py);
* its encrypted price token came to this worker with another auction: the
  worker remembers the last ``MAX_TOKENS`` tokens it admitted.

Before the worker's first read of the currencies (Redis down since it
started), a notice is not refused on a guess. What the worker cannot tell (a
token first seen by another worker or replica, a currency changed in the last
second) is decided in the ledger's atomic step, flagged there and counted
(docs/banker.md).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from redis.exceptions import RedisClusterException, RedisError

from tracker.plugins import Refused

from . import currencies, metrics
from .records import Entry

log = logging.getLogger(__name__)

#: Price tokens a worker remembers (about 200 bytes each); past it the oldest go.
MAX_TOKENS = 20_000


class Guard:
    """Refuse a notice in another currency, or with a token bound to another auction."""

    #: What :meth:`check` answers, for the OpenAPI document.
    REFUSALS: ClassVar[dict[str, str]] = {
        "400": "The banker: a billing notice in another currency than its campaign's "
        "(`currency_mismatch`).",
        "409": "The banker: an encrypted price already used by another auction "
        "(`price_token_reused`).",
    }

    def __init__(self, name: str, options: Any) -> None:
        self.name = name
        self.currency = options.default_currency
        self.prefix = options.key_prefix
        self._currencies: dict[str, str] | None = None  # None: never read
        self._version: int | None = None
        self._tokens: dict[str, str] = {}  # token digest -> auction, oldest first

    def check(self, entry: Entry) -> None:
        """Raise :class:`Refused` for a notice the ledger would not spend; never blocks."""
        known = self._currencies
        if known is not None:
            currency = known.get(entry.campaign, self.currency)
            if entry.currency != currency:
                raise Refused(
                    400,
                    "currency_mismatch",
                    f"Campaign {entry.campaign} is billed in {currency}, not {entry.currency}.",
                )
        if entry.token:
            tokens = self._tokens
            held = tokens.get(entry.token)
            if held is None:
                if len(tokens) >= MAX_TOKENS:
                    del tokens[next(iter(tokens))]
                tokens[entry.token] = entry.auction
            elif held != entry.auction:
                raise Refused(
                    409,
                    "price_token_reused",
                    "This encrypted price was already used by another auction; it is not billed.",
                )

    def refresh(self, client: Any, campaigns: Any) -> None:
        """Re-read the configured currencies if they changed (the outbox's thread).

        Args:
            client: The redis-py client.
            campaigns: Returns every campaign with a ledger, for the one-time
                migration of ledgers spent before currencies were configured.
        """
        try:
            version = currencies.version(client, self.prefix)
            if version is None:
                currencies.migrate(client, self.prefix, campaigns())
                version = currencies.version(client, self.prefix)
            if version != self._version or self._currencies is None:
                self._currencies = currencies.read(client, self.prefix)
                self._version = version
        except (RedisError, RedisClusterException, OSError) as ex:
            metrics.REDIS_ERRORS.labels(self.name).inc()
            log.debug("banker %s: currencies not read: %s", self.name, ex)
