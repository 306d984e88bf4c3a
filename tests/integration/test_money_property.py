"""Property: every billing notice answered 2xx is in the ledger exactly once, none is missing.

Random sequences of notices over real HTTP (gunicorn, two workers) into the
banker on a real Redis, with the exchange's price keys set: exact retries,
re-encodings (percent-encoded ids, a form POST instead of a GET, another
parameter order), missing or empty optional ids, a token replayed on another
auction, two campaigns billed in two currencies and notices in both. A model
says what each answer must be; the ledger must hold each distinct event
answered 2xx once, in one of the campaigns it was answered under, and flag
it in the others.
"""

from __future__ import annotations

import http.client
import itertools
import time
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.banker import currencies
from collectors.banker.ledger import Ledger, connect
from tests.integration.money import CRYPTO, PRICE_KEYS, bank_server, settled

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

CURRENCIES = ("USD", "EUR")  # campaign 0 bills in the default, campaign 1 in EUR
RUN = itertools.count()
RUNS = 1000  # runs whose campaigns the fixture configures up front


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, broker, redis_node):
    server = bank_server(tmp_path_factory.mktemp("prop"), broker, redis_node, **PRICE_KEYS)
    server.ledger = Ledger(connect(redis_node.url, False, 5.0), server.prefix)
    # Campaign 1 of every run bills in EUR, configured before the run as an
    # operator would: workers re-read the configured currencies once a second.
    pipe = server.ledger.client.pipeline(transaction=False)
    for run in range(RUNS):
        campaign = f"r{run}-c1"
        pipe.hset(f"{server.ledger.keys.base(campaign)}:budget", "currency", "EUR")
        currencies.publish(pipe, server.prefix, campaign, "EUR")
    pipe.execute()
    time.sleep(1.5)
    yield server
    server.stop()


@dataclass(frozen=True)
class Notice:
    auction: int
    iid: str | None  # None: absent; "": sent empty (the same as absent)
    bid: str | None
    campaign: int
    currency: str | None  # None: absent, the path's default (USD)
    token_of: int  # the auction whose token it carries: another one is a replay
    post: bool
    encode: bool  # percent-encode every character of the auction id
    reverse: bool  # parameters in the opposite order

    def identity(self) -> tuple:
        return (self.auction, self.iid or None, self.bid or None)


def price_micros(auction: int) -> int:
    """CPM micros of an auction's price: a whole number of micro-units per impression."""
    return (auction + 1) * 1_000_000


notices = st.builds(
    Notice,
    auction=st.integers(0, 3),
    iid=st.sampled_from([None, "", "i1", "i2"]),
    bid=st.sampled_from([None, "", "b1"]),
    campaign=st.integers(0, 1),
    currency=st.sampled_from([None, "USD", "EUR"]),
    token_of=st.integers(0, 3),
    post=st.booleans(),
    encode=st.booleans(),
    reverse=st.booleans(),
)
# A sequence: new notices, and exact resends of earlier ones (the exchange's retries).
sequences = st.lists(st.tuples(notices, st.integers(0, 30), st.booleans()), min_size=1, max_size=25)


def wire(notice: Notice, run: int) -> tuple[str, str, bytes | None, dict]:
    """The request an exchange sends for ``notice`` in run ``run``."""
    aid = f"r{run}-a{notice.auction}"
    # One token per auction and run: the same token on that auction's notices is normal.
    iv = f"{run:08d}{notice.token_of:08d}".encode()
    token = CRYPTO.encrypt(price_micros(notice.token_of), iv)
    encoded = "".join(f"%{b:02X}" for b in aid.encode())
    params = [("aid", encoded if notice.encode else aid)]
    for name, value in (("iid", notice.iid), ("bid", notice.bid)):
        if value is not None:
            params.append((name, value))
    params += [("cid", f"r{run}-c{notice.campaign}"), ("price", token)]
    if notice.currency is not None:
        params.append(("cur", notice.currency))
    if notice.reverse:
        params.reverse()
    query = "&".join(f"{k}={v}" for k, v in params)
    if notice.post:
        return (
            "POST",
            "/bill",
            query.encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
    return "GET", f"/bill?{query}", None, {}


def expected_status(notice: Notice, bound: dict[int, int]) -> int:
    """What the tracker must answer, given the auction each token is bound to so far."""
    if (notice.currency or "USD") != CURRENCIES[notice.campaign]:
        return 400  # refused before the token is looked at: it binds nothing
    owner = bound.setdefault(notice.token_of, notice.auction)  # bound when first taken
    return 204 if owner == notice.auction else 409


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequences)
def test_each_notice_answered_2xx_is_spent_exactly_once(keyed, sequence):
    run = next(RUN)
    campaigns = [f"r{run}-c{i}" for i in range(2)]
    if run >= RUNS:  # a long shrink: configure this run's campaign now
        keyed.ledger.set_budget(campaigns[1], None, None, "2026-01-01", "EUR")
        time.sleep(1.5)
    sent: list[Notice] = []
    bound: dict[int, int] = {}
    accepted: dict[tuple, set[int]] = {}  # identity -> campaigns it was answered 2xx under
    conn = http.client.HTTPConnection("127.0.0.1", keyed.port, timeout=10)
    try:
        for notice, back, resend in sequence:
            if resend and sent:
                notice = sent[-1 - back % len(sent)]
            elif notice.token_of not in bound:
                # A token is first seen on its own auction's notice; a replay comes after.
                notice = replace(notice, token_of=notice.auction)
            method, target, body, headers = wire(notice, run)
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == expected_status(notice, bound), (notice, target)
            sent.append(notice)
            if response.status // 100 == 2:
                accepted.setdefault(notice.identity(), set()).add(notice.campaign)
    finally:
        conn.close()

    def totals():
        reports = [keyed.ledger.report(c) for c in campaigns]
        return [r["events"] + r["flagged"]["other_campaign_events"] for r in reports]

    per_campaign = [sum(1 for cs in accepted.values() if c in cs) for c in range(2)]
    assert settled(totals, per_campaign) == per_campaign
    reports = [keyed.ledger.report(c) for c in campaigns]
    assert sum(r["events"] for r in reports) == len(accepted)
    spend = sum(price_micros(identity[0]) // 1000 for identity in accepted)
    assert sum(r["spend_micros"] for r in reports) == spend
    for c, report in enumerate(reports):
        only_here = sum(1 for cs in accepted.values() if cs == {c})
        assert report["events"] >= only_here
        assert report["currency"] == CURRENCIES[c]
        assert report["flagged"]["token_reused_events"] == 0
        assert report["flagged"]["currency_refused_events"] == 0
