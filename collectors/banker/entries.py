"""From a billing event to a ledger entry: what is spent, and what is only counted.

Runs on the request path (``collect``): a few dictionary reads per notice.
"""

from __future__ import annotations

import time
from typing import Any

from tracker.event import Event

from . import metrics
from .records import Entry


class Entries:
    """Reduce the events of one banker block to :class:`~collectors.banker.ledger.Entry`."""

    def __init__(self, name: str, options: Any) -> None:
        self.name = name
        self.options = options
        self.events = dict(options.events)
        self._late_count: Any = None  # a metric child, bound in open(): it opens files
        self._day = (0, "")  # (epoch day, "YYYY-MM-DD") of the last notice

    def open(self) -> None:
        """Bind the metric children, after the fork."""
        self._late_count = metrics.LATE.labels(self.name)

    def entry(self, event: Event, count: bool = True) -> Entry | None:
        """Reduce an event to a ledger entry; ``None`` when it is not spent.

        Args:
            event: The notice.
            count: Count a skipped or late notice (``False`` for the look
                :meth:`~collectors.banker.collector.BankerCollector.admit` takes
                before ``collect``, so that nothing is counted twice).
        """
        opts = self.options
        metric = self.events.get(event.type)
        dims = event.dimensions
        reason = None
        if metric is None:
            reason = "not_billable_type"
        elif dims.get("billable") is False:
            reason = "audit"
        elif dims.get(opts.bot_dimension) is True:
            reason = "bot"
        campaign = dims.get(opts.campaign_dimension)
        if reason is None and (not isinstance(campaign, str) or not campaign):
            reason = "no_campaign"
        elif reason is None and ("{" in campaign or "}" in campaign):
            reason = "bad_campaign"
        spend = event.metrics.get(metric) if metric else None
        if reason is None and not isinstance(spend, int):
            reason = "no_spend"
        if reason is not None:
            if count:
                metrics.SKIPPED.labels(self.name, reason).inc()
            return None
        late = self._late(event)
        if late and count:
            self._late_count.inc()
        line_item = dims.get(opts.line_item_dimension)
        auction = dims.get(opts.auction_dimension)
        token = dims.get(opts.token_dimension)
        return Entry(
            event.id,
            campaign,
            line_item if isinstance(line_item, str) and "}" not in line_item else "",
            str(dims.get(opts.currency_dimension) or opts.default_currency),
            spend,
            late,
            self._utc_day(event.received_at),
            auction if isinstance(auction, str) else "",
            token if isinstance(token, str) else "",
        )

    def _utc_day(self, epoch: float) -> str:
        day = int(epoch // 86_400)
        if day != self._day[0]:
            self._day = (day, time.strftime("%Y-%m-%d", time.gmtime(day * 86_400)))
        return self._day[1]

    def _late(self, event: Event) -> bool:
        """Whether the auction was ``late_after`` seconds before receipt; never raises.

        Any time a caller sends is judged: an integer too large for a float (or
        an infinite one) is no auction time, not an ``OverflowError``.
        """
        auction = event.dimensions.get(self.options.auction_time_dimension)
        if not isinstance(auction, int | float) or isinstance(auction, bool):
            return False
        if not 0 < auction < _MAX_AUCTION_TS:  # also False for NaN
            return False
        seconds = auction / 1000 if auction > 1e11 else auction
        return event.received_at - seconds > self.options.late_after


#: Past this an auction time is neither epoch seconds nor milliseconds (year 5138 in ms).
_MAX_AUCTION_TS = 10**14
