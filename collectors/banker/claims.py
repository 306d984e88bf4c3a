"""What the ledger decides outside a campaign's slot: who owns an event id, which auction a token.

A Lua script on Redis Cluster may only touch keys of one slot, and a
campaign's keys share the slot of its hash tag. Spending an event id once
*across* campaigns, and a price token once across auctions, cannot live there.
So each is a claim of its own, keyed by the id or the token (its own hash tag,
so claims spread over the cluster), made with ``SET NX``, atomic on its own:

* ``<prefix>:owner:{<event id>}`` holds the first campaign that claimed the
  id. A notice of that campaign goes on to the campaign's step, which spends
  it once (its ``SET NX`` per campaign makes a retry harmless); a notice of
  another campaign is flagged there, not spent.
* ``<prefix>:token:{<token digest>}`` holds the auction its token came with.
  The same token on another auction's notice is flagged, not spent.

The claim is made before the campaign's step and repeated with it on every
retry; a claim already held by the same campaign or auction is a success, so
a flush that died between the two steps is finished by its retry, and a
notice is spent once. Key names, TTLs and memory: docs/banker.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import Entry

#: Verdicts passed to the campaign's step, per entry (script.py knows them by number).
SPEND, OTHER_CAMPAIGN, TOKEN_REUSED = 0, 1, 2


class ClaimKeys:
    """Key names of claims under one prefix; the claimed value is the hash tag."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def owner(self, event_id: str) -> str:
        """The campaign that spends ``event_id``."""
        return f"{self.prefix}:owner:{{{event_id}}}"

    def token(self, digest: str) -> str:
        """The auction the token named by ``digest`` belongs to."""
        return f"{self.prefix}:token:{{{digest}}}"


def claim(
    client: Any,
    keys: ClaimKeys,
    batches: list[tuple[str, list[Entry]]],
    id_ttl: int,
    token_ttl: int,
) -> list[list[int] | Exception]:
    """Claim every entry's id for its campaign and its token for its auction, pipelined.

    Returns:
        Per batch, a verdict per entry, or the error that left the batch
        undecided (it is then retried whole).

    Raises:
        redis.RedisError: Nothing could be sent.
    """
    pipe = client.pipeline(transaction=False)
    wanted: list[tuple[str, str]] = []  # (key, claimant) per SET, in pipeline order
    for campaign, entries in batches:
        for entry in entries:
            wanted.append((keys.owner(entry.event_id), campaign))
            pipe.set(wanted[-1][0], campaign, nx=True, ex=id_ttl)
            if entry.token:
                wanted.append((keys.token(entry.token), entry.auction))
                pipe.set(wanted[-1][0], entry.auction, nx=True, ex=token_ttl)
    replies = pipe.execute(raise_on_error=False) if wanted else []
    _read_held(client, wanted, replies)
    return _verdicts(batches, replies)


def _read_held(client: Any, wanted: list[tuple[str, str]], replies: list[Any]) -> None:
    """Replace each ``None`` (SET NX found the claim made) by whether its claimant holds it.

    A second round trip that only retries and conflicts need.
    """
    held = [i for i, r in enumerate(replies) if r is None]
    if not held:
        return
    pipe = client.pipeline(transaction=False)
    for i in held:
        pipe.get(wanted[i][0])
    for i, value in zip(held, pipe.execute(raise_on_error=False), strict=True):
        replies[i] = value if isinstance(value, Exception) else _held_by(value, wanted[i][1])


def _verdicts(
    batches: list[tuple[str, list[Entry]]], replies: list[Any]
) -> list[list[int] | Exception]:
    """A verdict per entry from its claims' replies, or the error that left a batch undecided."""
    results: list[list[int] | Exception] = []
    at = 0
    for _campaign, entries in batches:
        verdicts: list[int] = []
        error: Exception | None = None
        for entry in entries:
            steps = 2 if entry.token else 1
            mine = replies[at : at + steps]
            at += steps
            error = error or next((r for r in mine if isinstance(r, Exception)), None)
            if error is not None:
                continue
            if not mine[0]:
                verdicts.append(OTHER_CAMPAIGN)
            elif entry.token and not mine[1]:
                verdicts.append(TOKEN_REUSED)
            else:
                verdicts.append(SPEND)
        results.append(error if error is not None else verdicts)
    return results


def _held_by(value: Any, claimant: str) -> bool:
    # None: the claim expired between SET and GET; nobody else holds it.
    return value is None or _text(value) == claimant


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
