"""No request leaves garbage that only the cyclic GC can free.

A reference cycle made per request (typically a refusal kept in a local of the
frame its own traceback holds) is freed only by the cyclic collector, whose
collections then run every few dozen requests and stall the worker: a flood
of clicks to unlisted hosts made 19 such objects a request before 6 December
(docs/performance.md, stalls). Every benchmark request, good and bad, is
checked here, through the shipped config.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Callable

import falcon.testing
import pytest

from loadtest.flood import GOOD
from loadtest.floods import BAD_KINDS
from loadtest.scenarios import CLICK_KEYS, SCENARIOS, Request
from tests import ROOT
from tests.apps import build_app, simulate
from tracker.config import load_file


@pytest.fixture(scope="module")
def client():
    config = load_file(ROOT / "config" / "tracker.yaml", {"TRACKER_CLICK_KEYS": CLICK_KEYS})
    tracker, _ = build_app(config)
    yield falcon.testing.TestClient(tracker.wsgi)
    tracker.close(1.0)


JSON = (("Content-Type", "application/json"),)
#: Refusals the flood targets do not make: a bad signature, an unsafe scheme, a bad
#: value, a wrong method, a broken or wrong-shaped body, a batch with a bad item.
OTHER_REFUSALS = (
    Request("GET", "/click?cid=c1&url=https%3A%2F%2Fevil.example%2F&sig=AAAA&kid=k1&exp=9"),
    Request("GET", "/click?cid=c1&url=javascript%3Aalert(1)"),
    Request("GET", "/click?cid=c1"),
    Request("GET", "/imp?cid=c1&price=abc"),
    Request("DELETE", "/imp?cid=c1"),
    Request("POST", "/conv", "{not json", JSON),
    Request("POST", "/conv", "[1, 2]", JSON),
    Request("POST", "/events", '{"events": [{"type": "nope"}]}', JSON),
)


def every_request() -> list[Request]:
    """The benchmark's scenarios (a few of each), every flood target, other refusals."""
    requests = [s.build(i) for s in SCENARIOS for i in range(3)]
    targets = [*(t.decode() for t in GOOD), *BAD_KINDS["mixed"]]
    return requests + [Request("GET", t) for t in targets] + list(OTHER_REFUSALS)


def leftovers(action: Callable[[], object]) -> Counter:
    """The objects ``action`` left that only the cyclic GC frees, by type."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        action()
        gc.collect()
        return Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def cycles(client: falcon.testing.TestClient, request: Request, times: int = 3) -> Counter:
    """What :func:`leftovers` finds after ``request``, if each of ``times`` sends leaves some.

    A request's own cycle comes back every time, whereas garbage another test
    left behind (a matplotlib figure let go while this one ran) is found once.
    """
    found = Counter()
    for _ in range(times):
        found = leftovers(lambda: simulate(client, request))
        if not found:
            break
    return found


def test_no_request_good_or_bad_leaves_reference_cycles(client):
    requests = every_request()
    statuses = Counter(simulate(client, r).status_code for r in requests)  # warm: lazy set-up
    assert statuses[200] and statuses[400] and statuses[404], statuses
    assert not statuses.keys() & {500, 503}, statuses
    left = {r.target[:80]: c for r in requests if (c := cycles(client, r))}
    assert left == {}


def test_the_check_finds_a_refusal_kept_in_a_local():
    # What the clicks' landing check did until 6 December: the refusal in a
    # local of the frame its traceback holds.
    def refuse() -> None:
        error = ValueError("kept")
        raise error

    def refused() -> None:
        with contextlib.suppress(ValueError):
            refuse()

    assert leftovers(refused)["ValueError"] == 1
