"""``tracker load`` and ``tracker report``, and the reporting part of ``tracker setup``.

Registered by :mod:`tracker.process.cli` (reporting is part of the core; it
imports no collector). The database is ``--database``, else
``TRACKER_REPORTING_URL``, else embedded chdb under ``var/reporting``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging.config
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from . import admin, page, query
from .store import Busy, StoreError, Unavailable, database_url, open_store

FORMATS = ("table", "json", "csv", "html")
DATABASE_HELP = "chdb:PATH or http://host:8123/db (TRACKER_REPORTING_URL; chdb:var/reporting)"


def register(sub: argparse._SubParsersAction, load_config: Callable[[str | None], Any]) -> None:
    """Add ``load`` and ``report`` to the ``tracker`` parser."""
    load = sub.add_parser("load", help="load the event topics into ClickHouse (reporting)")
    load.add_argument("--config", help="tracker YAML (TRACKER_CONFIG): its Kafka topics")
    load.add_argument("--database", help=DATABASE_HELP)
    load.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the config's)")
    load.add_argument("--topic", action="append", default=[], help="only this topic (repeatable)")
    load.add_argument("--group", default="tracker-reporting", help="consumer group")
    load.add_argument("--batch-size", type=int, default=50_000, help="messages per insert at most")
    load.add_argument("--interval", type=float, default=0.5, help="seconds per batch at most")
    load.add_argument("--once", action="store_true", help="load until caught up, then exit")
    load.add_argument(
        "--admin-bind",
        default=admin.admin_bind(),
        help="/readyz, /metrics, /report (TRACKER_LOADER_ADMIN_BIND, 127.0.0.1:9091; '' none)",
    )
    load.set_defaults(func=cmd_load, load_config=load_config)

    report = sub.add_parser("report", help="campaign report from ClickHouse (distinct ids)")
    report.add_argument("--from", dest="start", help="UTC date or time (default: 6 days ago)")
    report.add_argument("--to", dest="end", help="UTC date (inclusive) or time (exclusive)")
    report.add_argument("--by", default="campaign", help=", ".join(query.DIMENSIONS))
    report.add_argument("--campaign", help="only this campaign")
    report.add_argument("--format", choices=FORMATS, default="table")
    report.add_argument("--output", help="write to this file instead of stdout")
    report.add_argument(
        "--database", help="chdb:PATH or http://host:8123/db (TRACKER_REPORTING_URL)"
    )
    report.add_argument(
        "--loader", default=admin.admin_bind(), help="the loader's admin address, asked first"
    )
    report.set_defaults(func=cmd_report)


def event_topics(config: Any) -> tuple[str, tuple[str, ...]]:
    """Return the bootstrap servers and event topics of the config's Kafka collectors.

    A collector counts as Kafka when its loaded options (typed, see
    :class:`tracker.plugins.Options`, or a plain mapping for a plugin with a
    bare schema) have ``bootstrap_servers`` and ``topic``; the rejected
    stream's collectors are left out (not events).
    """
    rejected = set(config.rejected.collectors) if config.rejected else set()
    bootstrap, topics = "", []
    for name, plugin in config.collectors.items():
        opts = plugin.options
        server, topic = _option(opts, "bootstrap_servers"), _option(opts, "topic")
        if name in rejected or not isinstance(topic, str) or not isinstance(server, str):
            continue
        bootstrap = bootstrap or server
        routed = (_option(r, "topic") for r in (_option(opts, "events") or {}).values())
        for each in (topic, *routed):
            if each not in topics:
                topics.append(each)
    return bootstrap, tuple(topics)


def _option(options: Any, name: str) -> Any:
    """One option of a typed options object or of a mapping; None when absent."""
    if isinstance(options, Mapping):
        return options.get(name)
    return getattr(options, name, None)


def cmd_load(args: argparse.Namespace) -> int:
    """Run the loader until SIGTERM (or, with ``--once``, until caught up)."""
    from tracker.process.logs import logconfig_dict

    from .loader import Loader, LoaderOptions

    logging.config.dictConfig(logconfig_dict())
    config = args.load_config(args.config)
    bootstrap, topics = event_topics(config)
    if args.topic:
        topics = tuple(args.topic)
    if not topics:
        print("no Kafka event topics in the config; give --topic", file=sys.stderr)
        return 2
    options = LoaderOptions(
        bootstrap=args.bootstrap or bootstrap,
        topics=topics,
        group=args.group,
        batch_size=max(1, args.batch_size),
        interval=max(0.01, args.interval),
        once=args.once,
    )
    url = args.database or database_url()
    loader = Loader(options, lambda: open_store(url))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: loader.stop())
    server = admin.AdminServer(loader, args.admin_bind).start() if args.admin_bind else None
    try:
        return loader.run()
    except Unavailable as ex:
        print(f"reporting database: {ex}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()


def cmd_report(args: argparse.Namespace) -> int:
    """Print or write the report; ask the running loader first when it holds the database."""
    try:
        request = query.make_request(args.start, args.end, args.by, args.campaign)
    except query.ReportError as ex:
        print(f"tracker report: {ex}", file=sys.stderr)
        return 2
    url = args.database or database_url()
    try:
        text = _from_loader(args, request, url)
        if text is None:
            text = _locally(args, request, url)
    except (StoreError, ValueError) as ex:
        print(f"tracker report: {ex}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _from_loader(args: argparse.Namespace, request: query.ReportRequest, url: str) -> str | None:
    """Ask the loader at ``--loader`` if it holds the same embedded database; None if not."""
    if not url.startswith("chdb:") or not args.loader:
        return None
    base = f"http://{args.loader}"
    try:
        with urllib.request.urlopen(
            f"{base}/report?{urlencode(request.params())}", timeout=120
        ) as r:
            answer = json.loads(r.read())
        if answer.get("database") != f"chdb:{Path(url[5:] or 'var/reporting').resolve()}":
            return None
        if args.format == "html":
            with urllib.request.urlopen(
                f"{base}/report.html?{urlencode(request.params())}", timeout=120
            ) as r:
                return r.read().decode()
    except urllib.error.HTTPError as ex:
        detail = ex.read()[:300].decode("utf-8", "replace")
        raise StoreError(f"the loader at {args.loader} answered {ex.code}: {detail}") from None
    except (OSError, ValueError):
        return None
    return render(answer["rows"], request.by, args.format)


def _locally(args: argparse.Namespace, request: query.ReportRequest, url: str) -> str:
    try:
        store = open_store(url)
    except Busy as ex:
        raise StoreError(f"{ex}; no loader answers at {args.loader} (--loader)") from None
    try:
        store.create_tables()
        if args.format == "html":
            return page.render(store, request)
        return render(query.run(store, request), request.by, args.format)
    finally:
        store.close()


def render(rows: list[dict[str, Any]], by: tuple[str, ...], fmt: str) -> str:
    """Format report rows as ``json``, ``csv`` or ``table`` (html is :mod:`page`'s)."""
    columns = (*by, *query.METRICS)
    if fmt == "json":
        return json.dumps(rows) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if r[c] is None else r[c] for c in columns] for r in rows])
        return out.getvalue()
    cells = [list(columns)] + [[page.cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = []
    for row in cells:
        padded = [
            v.ljust(w) if i < len(by) else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    if not rows:
        lines.append("(no events in this range)")
    return "\n".join(lines) + "\n"


def setup_lines(url: str | None = None) -> list[str]:
    """Create the reporting tables for ``tracker setup``; never fail, say what happened."""
    url = url or database_url()
    try:
        store = open_store(url)
    except Busy:
        return [f"{url} is held by a running loader, which creates the tables itself"]
    except (Unavailable, ValueError) as ex:
        return [f"skipped: {ex}"]
    try:
        store.create_tables()
        return [f"tables {', '.join(schema_tables())} ready in {store.url}"]
    except StoreError as ex:
        return [f"skipped: {ex}"]
    finally:
        store.close()


def schema_tables() -> tuple[str, str]:
    """The reporting tables' names."""
    from .schema import DEAD_LETTERS, EVENTS

    return EVENTS, DEAD_LETTERS
