"""What the ledger takes and gives back: an entry per notice, what a step did, a reached cap."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Entry(NamedTuple):
    """One billable notice, reduced to what the ledger needs (spooled as a JSON list)."""

    event_id: str
    campaign: str
    line_item: str  # "" when the notice names none
    currency: str
    spend: int  # micro-units of ``currency``
    late: bool
    day: str  # UTC day the notice was received, YYYY-MM-DD
    # Defaults: spool records written before these fields still load.
    auction: str = ""  # the auction id, "" when the notice names none
    token: str = ""  # digest of its encrypted price token, "" for a clear price

    def identity(self) -> dict[str, str]:
        """What names the notice in the rejected stream: ids only, no personal data."""
        return {
            "event_id": self.event_id,
            "campaign_id": self.campaign,
            "auction_id": self.auction,
            "price_token": self.token,
        }


#: Fields of every ledger hash (total, per day, per line item, per line item and day).
COUNTERS = ("spend_micros", "events", "late_events", "late_micros")
#: Notices flagged and not spent, counted once each in a campaign's total hash.
FLAGS = ("other_campaign_events", "token_reused_events", "currency_refused_events")


@dataclass(frozen=True)
class Exhausted:
    """A cap a campaign reached in this step (announced once, by whoever crossed it)."""

    campaign: str
    cap: str  # "total" or "daily"
    day: str | None
    cap_micros: int
    spend_micros: int
    currency: str

    def notice(self) -> dict[str, Any]:
        """The JSON document sent to the budget topic."""
        return {
            "type": "budget_exhausted",
            "campaign_id": self.campaign,
            "cap": self.cap,
            "day": self.day,
            "cap_micros": self.cap_micros,
            "spend_micros": self.spend_micros,
            "overspend_micros": max(0, self.spend_micros - self.cap_micros),
            "currency": self.currency,
            "at": round(time.time(), 3),
        }


@dataclass
class Applied:
    """What one script call did."""

    applied: int = 0
    duplicates: int = 0
    refused_currency: int = 0
    other_campaign: int = 0  # ids another campaign spent: flagged, not spent
    token_reused: int = 0  # price tokens of another auction: flagged, not spent
    overspend_total: int = 0
    overspend_daily: int = 0
    exhausted: list[Exhausted] = field(default_factory=list)
    reused: list[Entry] = field(default_factory=list)  # the token_reused notices, flagged now

    def flagged(self) -> dict[str, int]:
        """Notices not spent, by ``banker_skipped_total`` reason."""
        return {
            "currency_mismatch": self.refused_currency,
            "other_campaign": self.other_campaign,
            "token_reused": self.token_reused,
        }
