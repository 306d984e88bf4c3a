"""The configured campaign currencies, mirrored in one hash that every worker keeps a copy of.

The ledger's step reads a campaign's currency from its budget hash, in the
campaign's slot (script.py); that is the truth. Admission (guard.py) must
decide on the request thread without a round trip, so ``tracker banker
set-budget --currency`` also writes the currency to ``<prefix>:currencies``
(campaign -> currency) and bumps ``<prefix>:currencies:version``. Each worker
reads the version once a second on its outbox thread and the whole hash only
when the version changed (one ``GET`` a second when nothing changes).

A campaign missing from the hash is billed in ``default_currency``, except
ledgers that spent before currencies were configured: they keep the currency
they were spent in. The first worker that finds no version copies those into
the hash (``HSETNX``, so workers doing it at once agree), then sets the
version; docs/banker.md.
"""

from __future__ import annotations

from typing import Any


def publish(client: Any, prefix: str, campaign: str, currency: str) -> None:
    """Record ``campaign``'s configured currency and tell the workers to re-read."""
    client.hset(f"{prefix}:currencies", campaign, currency)
    client.incr(f"{prefix}:currencies:version")


def version(client: Any, prefix: str) -> int | None:
    """The hash's version; ``None`` before anything was ever published or migrated."""
    value = client.get(f"{prefix}:currencies:version")
    return None if value is None else int(value)


def read(client: Any, prefix: str) -> dict[str, str]:
    """Every campaign with a currency of its own (configured, or spent in before that)."""
    return {_text(k): _text(v) for k, v in client.hgetall(f"{prefix}:currencies").items()}


def migrate(client: Any, prefix: str, campaigns: list[str]) -> None:
    """Copy the currencies of ledgers written before the hash existed, then set its version.

    A budget's own currency wins over the one a ledger was spent in, as in the
    ledger's step; ``HSETNX`` leaves alone what ``publish`` wrote meanwhile.
    """
    pipe = client.pipeline(transaction=False)
    for campaign in campaigns:
        pipe.hget(f"{prefix}:{{{campaign}}}:budget", "currency")
        pipe.hget(f"{prefix}:{{{campaign}}}:total", "currency")
    replies = pipe.execute() if campaigns else []
    pipe = client.pipeline(transaction=False)
    for i, campaign in enumerate(campaigns):
        own = replies[2 * i] or replies[2 * i + 1]
        if own:
            pipe.hsetnx(f"{prefix}:currencies", campaign, _text(own))
    pipe.setnx(f"{prefix}:currencies:version", 1)
    pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
