"""Microseconds per stage of one impression, measured in-process on the real objects.

Builds the tracker from the config (config/tracker.yaml by default, or
``BENCH_CONFIG``) exactly as a worker does, opens its collectors against a
broker of its own (scripts/kafka/kafka.sh, var/bench/stages-kafka) and sends
``BENCH_STAGES_N`` distinct ``/imp`` requests with every ad parameter through
the stages of the request path, timing each with ``perf_counter_ns``. Metrics
use prometheus_client's multiprocess mode, as under gunicorn. Then it times
whole requests through the tracker's WSGI app and through the bare Falcon
pixel (``loadtest.pixel``), in-process, so the framework's share is visible.

The ``geoip`` preprocessor runs with a small generated database
(:mod:`loadtest.enrich`) unless ``TRACKER_GEOIP_DB`` names one; the cache-miss
costs of ``user_agent`` and ``geoip`` follow the table.

Usage: ``make stages`` (prints the table; JSON in var/bench/stages.json).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import mean, median
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"


def environs(count: int, build: Callable | None = None, step: int = 1, kind: int = 0) -> list[dict]:
    """Return ``count`` WSGI environs of distinct requests from a browser.

    ``build(i)`` makes the ``i``-th request (impressions by default), called
    with ``i = n * step + kind``: the rejected scenario's ``kind`` of refusal.
    """
    import falcon.testing

    from loadtest.scenarios import impression

    out = []
    for i in range(count):
        request = (build or impression)(i * step + kind)
        url = urlsplit(request.target)
        out.append(
            falcon.testing.create_environ(
                path=url.path,
                query_string=url.query,
                headers=dict(request.headers),
                remote_addr="203.0.113.7",
            )
        )
    return out


class Stages:
    """Time the stages of the request path of one configured path, one request at a time."""

    def __init__(self, app, route: str) -> None:
        resource, _, params, _ = app._router.find(route)
        self.app = app
        self.resource = resource
        self.params = params
        self.times: dict[str, list[int]] = {}

    def _add(self, name: str, ns: int) -> None:
        self.times.setdefault(name, []).append(ns)

    def run(self, environ: dict) -> None:
        """Send one request through every stage, as ``TrackingResource.handle`` does."""
        import falcon

        from tracker import metrics
        from tracker.http.extract import request_lookup
        from tracker.intake.fields.schema import gather

        r, intake = self.resource, self.resource.intake
        clock = time.perf_counter_ns
        t = clock()
        # With the app's options, as falcon.App builds them (default options cost ~100 µs).
        req = falcon.Request(environ, options=self.app.req_options)
        resp = falcon.Response(options=self.app.resp_options)
        t = self._lap("Falcon request and response objects", t, clock)
        raw = gather(intake.path, request_lookup(req, self.params, {}))
        context = r.context(req)
        t = self._lap("extract and gather fields, request context", t, clock)
        values = intake.loader.load(raw)
        t = self._lap("validation (marshmallow fields via checks.Loader)", t, clock)
        event = intake.build(values, context)
        t = self._lap("event build (dimensions, metrics, ids, time)", t, clock)
        if r.guard is not None:
            r.identify(req, resp, values, event)
            t = self._lap("consent decision and user cookie", t, clock)
        for preprocessor in intake.route.preprocessors:
            event = preprocessor.process(event)
            t = self._lap(f"preprocessor {preprocessor.name}", t, clock)
        metrics.inc(metrics.EVENTS, event.type)
        metrics.inc(metrics.REQUESTS, intake.path.name, "accepted")
        t = self._lap("request and event counters", t, clock)
        for collector, only in intake.route.targets:
            collector.collect(only(event) if only else event)
            t = self._lap(f"collect: {collector.name} ({type(collector).__name__})", t, clock)
        r.respond(resp, event.id)
        self._lap("response (pixel)", t, clock)

    def _lap(self, name: str, start: int, clock: Callable[[], int]) -> int:
        now = clock()
        self._add(name, now - start)
        return clock()


def whole_requests(app, envs: list[dict]) -> list[int]:
    """Time whole requests through a WSGI app, body included."""

    def start_response(status, headers, exc_info=None):
        return None

    times = []
    for environ in envs:
        t = time.perf_counter_ns()
        b"".join(app(environ, start_response))
        times.append(time.perf_counter_ns() - t)
    return times


#: The rejected scenario's refusals, in its order (``loadtest.scenarios.rejected``).
REFUSALS = (
    "refused: /win, oversize auction id",
    "refused: /win, campaign id breaking its pattern",
    "refused: /bill, unfilled price macro",
    "refused: unknown path (404)",
)


def refusal_requests(app, count: int) -> dict[str, list[int]]:
    """Time accepted ``/win`` notices and each kind of refusal, whole requests."""
    from loadtest.scenarios import rejected, win

    times = {"accepted: /win notice": whole_requests(app, environs(count, win))}
    for kind, name in enumerate(REFUSALS):
        times[name] = whole_requests(app, environs(count, rejected, len(REFUSALS), kind))
    return times


def refusal_table(times: dict[str, list[int]], bare: list[int]) -> str:
    """Render each refusal's median against the accepted notice's, net of the bare pixel."""
    floor = median(bare) / 1000
    accepted = median(times["accepted: /win notice"]) / 1000
    lines = [
        "| whole request | median µs | share of an accepted /win, net of the bare pixel |",
        "|---|--:|--:|",
    ]
    for name, ns in times.items():
        us = median(ns) / 1000
        lines.append(f"| {name} | {us:.1f} | {(us - floor) / (accepted - floor):.2f} |")
    return "\n".join(lines) + "\n"


def summary(times: dict[str, list[int]]) -> list[dict]:
    """Median and mean of each stage, in microseconds."""
    return [
        {"stage": name, "median_us": median(ns) / 1000, "mean_us": mean(ns) / 1000}
        for name, ns in times.items()
    ]


def table(rows: list[dict], whole: dict[str, list[int]]) -> str:
    """Render the stage table and the whole-request figures as Markdown.

    Shares are of the sum of the medians: on a shared machine the means carry
    every preemption, the medians much less.
    """
    total = sum(r["median_us"] for r in rows)
    lines = ["| stage | median µs | mean µs | share |", "|---|--:|--:|--:|"]
    for r in rows:
        lines.append(
            f"| {r['stage']} | {r['median_us']:.1f} | {r['mean_us']:.1f} "
            f"| {r['median_us'] / total:.0%} |"
        )
    lines.append(f"| **sum of the stages** | **{total:.1f}** | | 100% |")
    for name, ns in whole.items():
        lines.append(f"| {name} | {median(ns) / 1000:.1f} | {mean(ns) / 1000:.1f} | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Measure, print the table, write var/bench/stages.json."""
    # The metrics mode is chosen when tracker.metrics is first imported: multiprocess,
    # as under gunicorn, so the counters cost what they cost in a worker.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-stages-metrics-")
    from loadtest import pixel
    from loadtest.enrich import miss_costs, miss_table, write_database
    from loadtest.scenarios import CLICK_KEYS
    from loadtest.servers import Broker, free_port
    from tracker.config import load_file
    from tracker.http.app import Tracker

    count = int(os.environ.get("BENCH_STAGES_N") or 5000)
    port = int(os.environ.get("BENCH_KAFKA_PORT") or free_port(pair=True))
    broker = Broker(port, WORK / "stages-kafka")
    broker.up()
    environ = {
        **os.environ,
        "TRACKER_KAFKA_BOOTSTRAP": broker.bootstrap,
        "TRACKER_LOG_DIR": str(WORK / "stages" / "log"),
        "TRACKER_SPOOL_DIR": str(WORK / "stages" / "spool"),
        "TRACKER_CLICK_KEYS": CLICK_KEYS,
    }
    # The geoip preprocessor is timed with a database, as in production.
    environ.setdefault("TRACKER_GEOIP_DB", str(write_database(ROOT)))
    config = load_file(os.environ.get("BENCH_CONFIG") or ROOT / "config" / "tracker.yaml", environ)
    tracker = Tracker(config)
    try:
        for plugin in config.collectors.values():
            if hasattr(plugin.cls, "setup"):
                plugin.create().setup(30)
        tracker.open()
        stages = Stages(tracker.wsgi, "/imp")
        warm = environs(count // 10)
        for env in warm:
            stages.run(env)
        stages.times.clear()
        for env in environs(count):
            stages.run(env)
        whole = {
            "whole request through the tracker's WSGI app": whole_requests(
                tracker.wsgi, environs(count)
            ),
            "whole request through the bare Falcon pixel": whole_requests(
                pixel.app, environs(count)
            ),
        }
        refusal_requests(tracker.wsgi, count // 10)  # warm-up
        refusals = refusal_requests(tracker.wsgi, count)
    finally:
        lost = tracker.close(30)
        broker.down()
    misses = miss_costs(Path(environ["TRACKER_GEOIP_DB"]))
    rows = summary(stages.times)
    print(f"/imp, all ad parameters: {count} requests, {lost} events lost at close")
    print(table(rows, whole))
    print(refusal_table(refusals, whole["whole request through the bare Falcon pixel"]))
    print(miss_table(misses))
    out = WORK / "stages.json"
    out.write_text(
        json.dumps(
            {
                "requests": count,
                "stages": rows,
                "whole": {
                    k: {"median_us": median(v) / 1000, "mean_us": mean(v) / 1000}
                    for k, v in {**whole, **refusals}.items()
                },
                "cache_misses": misses,
            },
            indent=2,
        )
    )
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
