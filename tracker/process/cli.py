"""The ``tracker`` command: serve, check-config, setup, replay, sign-url, tag, docs, tail.

Plugins add commands through the ``tracker.commands`` entry-point group (the
banker's ``tracker banker ...``): each entry point is a callable
``register(subparsers, load_config)``. The core imports no plugin by name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from tracker.adtech.signing import SCOPES
from tracker.config import ConfigError, config_path, load_file
from tracker.reporting import cli as reporting

EXIT_CONFIG = 2
COMMAND_GROUP = "tracker.commands"


def gunicorn_conf() -> str:
    """Locate ``config/gunicorn.conf.py``: ``TRACKER_GUNICORN_CONF``, cwd, then the source tree."""
    explicit = os.environ.get("TRACKER_GUNICORN_CONF")
    if explicit:
        return explicit
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = base / "config" / "gunicorn.conf.py"
        if candidate.is_file():
            return str(candidate)
    raise SystemExit("config/gunicorn.conf.py not found; set TRACKER_GUNICORN_CONF")


def _load(path: str):
    try:
        return load_file(path)
    except ConfigError as ex:
        print(f"{path}: invalid config", file=sys.stderr)
        for error in ex.errors:
            print(f"  {error}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file the way ``serve`` does."""
    config = _load(args.file)
    print(
        f"{args.file}: OK ({len(config.paths)} paths, {len(config.collectors)} collectors, "
        f"{len(config.preprocessors)} preprocessors)"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Validate the config, then replace this process with gunicorn."""
    overrides = {
        "TRACKER_CONFIG": args.config,
        "TRACKER_BIND": args.bind,
        "TRACKER_ADMIN_BIND": args.admin_bind,
        "TRACKER_WORKERS": args.workers and str(args.workers),
        "TRACKER_WORKER_CLASS": args.worker_class,
    }
    os.environ.update({k: v for k, v in overrides.items() if v})
    _load(config_path())
    conf = gunicorn_conf()
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", conf])
    return 0  # pragma: no cover - execv does not return


def cmd_tag(args: argparse.Namespace) -> int:
    """Print the browser tag's routes and sizes, or the minified tag itself."""
    from tracker.http.tag import Tag

    config = _load(args.config or config_path())
    tag = Tag.load()
    if args.print:
        sys.stdout.write(tag.text.decode())
        return 0
    route = config.browser.tag.route
    if not route:
        print("the tag is not served (browser.tag.route is null)", file=sys.stderr)
        return 1
    print(f"{route}  (Cache-Control: public, max-age={config.browser.tag.max_age})")
    print(f"{tag.hashed_route(route)}  (immutable)")
    print(f"{len(tag.text)} bytes minified, {len(tag.gzipped)} bytes gzipped")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    """Create what the collectors need outside the process (Kafka topics...)."""
    config = _load(args.config or config_path())
    for name, plugin in config.collectors.items():
        for line in plugin.create().setup(args.timeout):
            print(f"{name}: {line}")
    if not args.no_reporting:
        from tracker.reporting.cli import setup_lines

        for line in setup_lines():
            print(f"reporting: {line}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Re-send events from spool segments or log files to the collectors."""
    from tracker.process.replay import ReplayError, replay

    config = _load(args.config or config_path())
    unknown = [name for name in args.collector if name not in config.collectors]
    if unknown:
        print(f"no collector named {', '.join(unknown)} in the config", file=sys.stderr)
        return EXIT_CONFIG
    try:
        report = replay(config, [Path(f) for f in args.files], tuple(args.collector), args.timeout)
    except (ReplayError, OSError, ValueError) as ex:
        print(f"replay failed: {ex}", file=sys.stderr)
        return 1
    for name, count in sorted(report.sent.items()):
        print(f"{name}: {count} events sent")
    if report.skipped:
        print(f"{report.skipped} events skipped: their path is not in the config")
    if report.deleted:
        print(f"replayed segments deleted: {len(report.deleted)}")
    for name in sorted(report.silent):
        print(f"{name}: says nothing of what it delivered; its segments are kept", file=sys.stderr)
    if report.kept:
        kept = " ".join(str(p) for p in report.kept)
        print(f"segments kept for another replay: {len(report.kept)} ({kept})", file=sys.stderr)
    if report.lost:
        print(f"{report.lost} events neither delivered nor spooled", file=sys.stderr)
    return 1 if report.lost or report.kept else 0


def cmd_sign_url(args: argparse.Namespace) -> int:
    """Print a signed click URL for an ad server to use."""
    import time

    from tracker.adtech import clickurl, signing

    keys_text = os.environ.get(args.keys_env, "")
    try:
        keys = signing.parse_keys(keys_text)
        signer = signing.UrlSigner(keys, args.key_id)
        params = dict(_pair(p) for p in args.param)
        url = clickurl.build_click_url(
            args.base, args.landing, params, signer, args.ttl, time.time(), args.scope
        )
    except ValueError as ex:
        where = f" in {args.keys_env}" if not keys_text or "key" in str(ex) else ""
        print(f"cannot sign{where}: {ex}", file=sys.stderr)
        return 2
    print(url)
    return 0


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--param {text!r} is not name=value")
    return name, value


def cmd_docs(args: argparse.Namespace) -> int:
    """Write the generated documents into ``--dir``, or with ``--check`` report stale ones."""
    from tracker.process.docs import generated

    stale = []
    for name, text in generated(args.config).items():
        path = Path(args.dir) / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    for path in stale:
        print(f"{path} is stale: run `make docs` (tracker docs) and commit it", file=sys.stderr)
    return 1 if stale else 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print the events in a Kafka topic, one JSON document per line."""
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"tracker-tail-{os.getpid()}",
            "auto.offset.reset": "earliest" if args.from_beginning else "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    seen = 0
    try:
        while args.max is None or seen < args.max:
            msg = consumer.poll(args.idle_timeout)
            if msg is None:
                break
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                print(f"error: {msg.error()}", file=sys.stderr)
                return 1
            print(json.dumps(json.loads(msg.value()), indent=args.indent))
            seen += 1
    finally:
        consumer.close()
    return 0


def parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    top = argparse.ArgumentParser(prog="tracker", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run gunicorn with config/gunicorn.conf.py")
    serve.add_argument("--config", help="tracker YAML (TRACKER_CONFIG)")
    serve.add_argument("--bind", help="address:port (TRACKER_BIND)")
    serve.add_argument(
        "--admin-bind", help="address:port of /metrics (TRACKER_ADMIN_BIND, 127.0.0.1:9090)"
    )
    serve.add_argument("--workers", type=int, help="worker processes (TRACKER_WORKERS)")
    serve.add_argument("--worker-class", choices=("meinheld", "gthread"))
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    setup = sub.add_parser("setup", help="create Kafka topics and other collector resources")
    setup.add_argument("--config", help="tracker YAML (TRACKER_CONFIG)")
    setup.add_argument("--timeout", type=float, default=30.0)
    setup.add_argument(
        "--no-reporting", action="store_true", help="leave the reporting tables alone"
    )
    setup.set_defaults(func=cmd_setup)

    replay = sub.add_parser(
        "replay",
        help="re-send events from spool segments (deleted once sent) or log files (same ids)",
    )
    replay.add_argument("files", nargs="+", help="spool segments (*.seg) or JSON-lines files")
    replay.add_argument("--config", help="tracker YAML (TRACKER_CONFIG)")
    replay.add_argument(
        "--collector",
        action="append",
        default=[],
        help="send to this collector (repeatable); default: the collectors of each event's path",
    )
    replay.add_argument("--timeout", type=float, default=30.0)
    replay.set_defaults(func=cmd_replay)

    sign = sub.add_parser("sign-url", help="build a signed click URL for ad servers")
    sign.add_argument(
        "--base", required=True, help="the click path, e.g. https://trk.example/click"
    )
    sign.add_argument("--landing", required=True, help="landing URL; may hold {click_id} macros")
    sign.add_argument("--param", action="append", default=[], help="name=value (repeatable)")
    sign.add_argument("--ttl", type=int, help="seconds the signature stays valid")
    sign.add_argument("--key-id", help="key to sign with (default: the last one)")
    sign.add_argument(
        "--scope",
        choices=SCOPES,
        default="url",
        help="what the signature covers: the landing URL, or every query parameter "
        "(the click path's signature_scope)",
    )
    sign.add_argument(
        "--keys-env", default="TRACKER_CLICK_KEYS", help="variable holding kid:secret,..."
    )
    sign.set_defaults(func=cmd_sign_url)

    tag = sub.add_parser("tag", help="print the browser tag's routes and size")
    tag.add_argument("--config", help="config file (default: TRACKER_CONFIG)")
    tag.add_argument("--print", action="store_true", help="print the minified tag instead")
    tag.set_defaults(func=cmd_tag)

    docs = sub.add_parser(
        "docs", help="generate docs/config.md and docs/openapi.yaml from the schemas"
    )
    docs.add_argument("--dir", default="docs", help="where they go (docs)")
    docs.add_argument(
        "--config", default="config/tracker.yaml", help="the config the API document describes"
    )
    docs.add_argument("--check", action="store_true", help="only fail if a file is stale")
    docs.set_defaults(func=cmd_docs)

    tail = sub.add_parser("tail", help="print the events in a Kafka topic")
    tail.add_argument("topic")
    tail.add_argument(
        "--bootstrap", default=os.environ.get("TRACKER_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", type=int, help="stop after this many events")
    tail.add_argument("--idle-timeout", type=float, default=5.0, help="stop after idle seconds")
    tail.add_argument("--indent", type=int, default=None)
    tail.set_defaults(func=cmd_tail)

    reporting.register(sub, lambda path: _load(path or config_path()))
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        ep.load()(sub, lambda path: _load(path or config_path()))
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the ``tracker`` command."""
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
