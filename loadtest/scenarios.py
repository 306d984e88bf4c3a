"""What the benchmark sends: one table of scenarios, each a builder of distinct requests.

Add a scenario by adding a row to :data:`SCENARIOS`. Each row names a builder
``build(i) -> Request`` that returns the ``i``-th request of the scenario (the
benchmark builds a few thousand distinct ones and the load tools replay them
in a loop), what the tracker must make of them (``expect``) and, optionally,
the constant arrival rates at which its latency is measured with vegeta.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from tracker.adtech import clickurl, signing

#: Sent with every request: a desktop Chrome, so the bot filter does not flag it.
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
#: A TCF v2 TC string with consent for purposes 1-3 (from the IAB spec's examples).
TC_STRING = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"
#: The click-signing key the benchmark gives the tracker in TRACKER_CLICK_KEYS.
CLICK_KEYS = "bench:" + base64.urlsafe_b64encode(b"benchmark-signing-key-32-bytes!!").decode()
LANDING = "https://www.example.com/landing?click={click_id}"
CAMPAIGNS = ("c-1", "c-2", "c-3", "summer-sale")
#: A rate given as this string is half the scenario's measured maximum throughput.
HALF = "half"

Rate = int | str


@dataclass(frozen=True)
class Request:
    """One HTTP request, as both load tools replay it."""

    method: str
    target: str
    body: str = ""
    headers: tuple[tuple[str, str], ...] = (("User-Agent", BROWSER),)


@dataclass(frozen=True)
class Scenario:
    """A row of the benchmark table.

    Attributes:
        name: Short name, used in the results and ``BENCH_ONLY``.
        title: What the table shows.
        build: Returns the ``i``-th request of the scenario.
        expect: ``accepted`` (every request becomes an event), ``rejected``
            (none does) or ``mixed``; the benchmark fails when the tracker's
            counters disagree, so a scenario cannot silently measure refusals.
        rates: Arrival rates (req/s, or :data:`HALF`) of the open-loop latency runs.
        events_per_request: Events each request carries (a batch carries several).
    """

    name: str
    title: str
    build: Callable[[int], Request]
    expect: str = "accepted"
    rates: tuple[Rate, ...] = ()
    events_per_request: int = 1


def _get(path: str, params: dict[str, str | int]) -> Request:
    return Request("GET", f"{path}?{urlencode(params, quote_via=quote)}")


def _post_json(path: str, body: object) -> Request:
    headers = (("User-Agent", BROWSER), ("Content-Type", "application/json"))
    return Request("POST", path, json.dumps(body, separators=(",", ":")), headers)


def _ad(i: int) -> dict[str, str | int]:
    """Every ad parameter of a web impression: ids, publisher, consent, clearing price."""
    return {
        "cid": CAMPAIGNS[i % len(CAMPAIGNS)],
        "crid": f"cr-{i % 7}",
        "li": f"li-{i % 11}",
        "aid": f"a-{i}",
        "iid": f"imp-{i}",
        "bid": f"b-{i % 5}",
        "pub": "pub-42",
        "site": "news.example.com",
        "gdpr": 1,
        "gdpr_consent": TC_STRING,
        "us_privacy": "1YNN",
        "price": f"1.{i % 100:02d}",
    }


def impression(i: int) -> Request:
    """``/imp`` with every ad parameter, consent that allows the user cookie."""
    return _get("/imp", _ad(i))


_SIGNER = signing.UrlSigner(signing.parse_keys(CLICK_KEYS))


def click(i: int) -> Request:
    """``/click`` signed as ``tracker sign-url`` signs it (the tracker verifies it)."""
    params = {k: str(v) for k, v in _ad(i).items() if k != "price"}
    url = clickurl.build_click_url("http://t/click", LANDING, params, _SIGNER, None, 0)
    return Request("GET", url.removeprefix("http://t"))


def vast(i: int) -> Request:
    """``/vast/{event}``: a quartile of a 30-second video ad."""
    event = ("start", "firstQuartile", "midpoint", "thirdQuartile", "complete")[i % 5]
    params = {k: v for k, v in _ad(i).items() if k != "price"}
    return _get(f"/vast/{event}", {**params, "dur": "00:00:30.000", "ph": "00:00:15.000"})


def _notice(i: int) -> dict[str, str | int]:
    return {
        "aid": f"a-{i}",
        "iid": f"imp-{i}",
        "bid": f"b-{i % 5}",
        "seat": "seat-1",
        "adid": f"ad-{i % 13}",
        "cid": CAMPAIGNS[i % len(CAMPAIGNS)],
        "crid": f"cr-{i % 7}",
        "price": f"2.{i % 100:02d}",
        "cur": "EUR",
    }


def win(i: int) -> Request:
    """``/win``: an exchange's win notice with a clear clearing price."""
    return _get("/win", _notice(i))


def bill(i: int) -> Request:
    """``/bill``: a billing notice; durable in the shipped config (one fsync each)."""
    return _get("/bill", _notice(i))


def _conversion(i: int) -> dict[str, str | int]:
    return {
        "clid": f"click-{i}",
        "cid": CAMPAIGNS[i % len(CAMPAIGNS)],
        "order": f"o-{i}",
        "value": f"19.{i % 100:02d}",
        "currency": "EUR",
        "quantity": 1 + i % 3,
    }


def conversion(i: int) -> Request:
    """``/conv`` as a POST of a JSON object."""
    return _post_json("/conv", _conversion(i))


#: What one ``/events`` batch holds: an ad server's notices and conversions.
BATCH = ("win", "win", "win", "win", "billing", "billing", "conversion", "conversion")


def batch(i: int) -> Request:
    """``/events``: a JSON array of 8 items (4 wins, 2 durable billings, 2 conversions)."""
    items = []
    for n, event in enumerate(BATCH):
        j = i * len(BATCH) + n
        fields = _conversion(j) if event == "conversion" else _notice(j)
        items.append({"event": event, **fields})
    return _post_json("/events", items)


def rejected(i: int) -> Request:
    """Requests the tracker refuses, in turn: oversize, bad pattern, price macro, unknown path."""
    kind = i % 4
    if kind == 0:
        return _get("/win", {**_notice(i), "aid": "a" * 200})
    if kind == 1:
        return _get("/win", {**_notice(i), "cid": "not a campaign!"})
    if kind == 2:
        return _get("/bill", {**_notice(i), "price": "${AUCTION_PRICE}"})
    return _get("/no-such-path", {"cid": f"c-{i}"})


#: Of every 100 requests of the mix: (builder, share).
MIX = (
    (impression, 55),
    (vast, 20),
    (win, 10),
    (click, 5),
    (bill, 5),
    (conversion, 3),
    (rejected, 2),
)
_MIX_ORDER = tuple(build for build, share in MIX for _ in range(share))


def mix(i: int) -> Request:
    """A realistic mix: mostly impressions and video, some notices, clicks and conversions."""
    return _MIX_ORDER[i % len(_MIX_ORDER)](i)


#: The references, run with the same tool and settings on the impression requests.
REFERENCES = (
    Scenario("nginx", "nginx empty_gif", impression, rates=(1000, 2000)),
    Scenario("falcon", "bare Falcon pixel, same worker", impression, rates=(1000, 2000)),
)

SCENARIOS = (
    Scenario("imp", "/imp, all ad parameters", impression, rates=(1000, 2000, HALF)),
    Scenario("click", "/click, signed", click),
    Scenario("vast", "/vast/{event}", vast, rates=(1000, 2000, HALF)),
    Scenario("win", "/win", win, rates=(1000, 2000, HALF)),
    Scenario("bill", "/bill (durable)", bill, rates=(1000, HALF)),
    Scenario("conv", "/conv POST JSON", conversion),
    Scenario("events", "/events batch of 8", batch, events_per_request=len(BATCH)),
    Scenario("rejected", "rejected requests", rejected, expect="rejected"),
    Scenario("mix", "realistic mix", mix, expect="mixed"),
)
