"""``tracker banker spend`` and ``tracker banker set-budget``.

Registered in the ``tracker.commands`` entry-point group: ``tracker.process.cli``
discovers the group and calls :func:`register`, so the core never imports this
collector (a third-party plugin adds its commands the same way).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


def register(sub: argparse._SubParsersAction, load_config: Callable[[str | None], Any]) -> None:
    """Add the ``banker`` command and its subcommands to the ``tracker`` parser.

    Args:
        sub: The ``tracker`` command's subparsers.
        load_config: Reads and validates a config file (``None``: the default
            one), exiting with the list of problems when it is invalid.
    """
    banker = sub.add_parser("banker", help="read the spend ledger, set budgets (Redis)")
    commands = banker.add_subparsers(dest="banker_command", required=True)

    spend = commands.add_parser("spend", help="print spend per campaign as JSON")
    spend.add_argument("--campaign", action="append", default=[], help="only this campaign")
    spend.add_argument("--day", type=_day, help="spend of this UTC day (YYYY-MM-DD)")
    _common(spend, load_config)
    spend.set_defaults(func=cmd_spend)

    budget = commands.add_parser("set-budget", help="set a campaign's daily and total caps")
    budget.add_argument("--campaign", required=True)
    budget.add_argument("--daily-micros", type=_micros, help="daily cap (UTC day), micro-units")
    budget.add_argument("--total-micros", type=_micros, help="lifetime cap, micro-units")
    budget.add_argument(
        "--clear", action="append", choices=("daily", "total"), default=[], help="remove a cap"
    )
    budget.add_argument(
        "--currency",
        type=_currency,
        help="the campaign's currency (ISO 4217), instead of the banker's default_currency",
    )
    _common(budget, load_config)
    budget.set_defaults(func=cmd_set_budget)


def _common(parser: argparse.ArgumentParser, load_config: Callable) -> None:
    parser.add_argument("--config", help="tracker YAML (TRACKER_CONFIG)")
    parser.add_argument("--collector", help="banker collector name (default: the only one)")
    parser.add_argument("--indent", type=int, default=None)
    parser.set_defaults(load_config=load_config)


def _day(text: str) -> str:
    if not DAY.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not YYYY-MM-DD")
    try:
        time.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date") from None
    return text


def _currency(text: str) -> str:
    if not CURRENCY.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 4217 code like USD")
    return text


def _micros(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of micro-units")
    return int(text)


def _ledger(args: argparse.Namespace):
    from .collector import BankerCollector
    from .ledger import Ledger, connect

    config = args.load_config(args.config)
    bankers = {
        name: plugin
        for name, plugin in config.collectors.items()
        if issubclass(plugin.cls, BankerCollector)
    }
    if args.collector:
        if args.collector not in bankers:
            raise SystemExit(f"no banker collector named {args.collector!r} in the config")
        options = bankers[args.collector].options
    elif len(bankers) == 1:
        options = next(iter(bankers.values())).options
    else:
        found = ", ".join(sorted(bankers)) or "none"
        raise SystemExit(f"name the banker collector with --collector (found: {found})")
    client = connect(options.redis_url, options.cluster, 5.0)
    return Ledger.from_options(client, options)


def cmd_spend(args: argparse.Namespace) -> int:
    """Print ``{"<campaign>": {"spend_micros": N, "currency": "USD", "flagged": {...}, ...}}``."""
    import redis

    try:
        ledger = _ledger(args)
        campaigns = args.campaign or ledger.campaigns()
        report = {c: ledger.report(c, args.day) for c in campaigns}
    except redis.RedisError as ex:
        print(f"redis: {ex}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=args.indent, sort_keys=True))
    return 0


def cmd_set_budget(args: argparse.Namespace) -> int:
    """Set or clear caps, update the exhausted sets, print the campaign's report."""
    import redis

    daily = -1 if "daily" in args.clear else args.daily_micros
    total = -1 if "total" in args.clear else args.total_micros
    if daily is None and total is None and args.currency is None:
        print("give --daily-micros, --total-micros, --clear or --currency", file=sys.stderr)
        return 2
    today = time.strftime("%Y-%m-%d", time.gmtime())
    try:
        report = _ledger(args).set_budget(args.campaign, daily, total, today, args.currency)
    except redis.RedisError as ex:
        print(f"redis: {ex}", file=sys.stderr)
        return 1
    except ValueError as ex:
        print(ex, file=sys.stderr)
        return 2
    print(json.dumps({args.campaign: report}, indent=args.indent, sort_keys=True))
    return 0
