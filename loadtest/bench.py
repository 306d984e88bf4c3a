"""Run the benchmark: references and tracker scenarios, then the Kafka and ledger checks.

Usage: ``make bench`` (full run, results in loadtest/results/) or
``make bench-smoke`` (a few seconds per scenario, results in var/bench/results/).
Both go through ``loadtest/bench.sh``, which installs the tools. Settings come
from ``BENCH_*`` environment variables (:mod:`loadtest.settings`, docs/performance.md).

Exit status: 0, or 1 when events that the tracker accepted are missing from
Kafka (or more arrived), the banker's ledger differs from the distinct billable
notices accepted, or a scenario's requests were not answered as it expects.
Timing never fails the run.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict

from collectors.banker.ledger import Ledger, connect
from collectors.kafka import KafkaCollector
from loadtest import banker, floods, load, report
from loadtest.scenarios import REFERENCES, SCENARIOS, Scenario, latency_order
from loadtest.servers import ROOT, BareFalcon, Broker, Nginx, Redis, TrackerServer
from loadtest.settings import Settings
from tracker.config import load_file

#: Distinct requests built per scenario; the load tools replay them in a loop.
DISTINCT = 4000


class Run:
    """One benchmark run: its servers, the figures measured and the problems found."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.wrk_bin = shutil.which("wrk") or "wrk"
        self.vegeta_bin = str(ROOT / "var" / "bin" / "vegeta")
        self.nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        unknown = set(settings.only) - {s.name for s in SCENARIOS}
        if unknown:
            raise SystemExit(f"BENCH_ONLY names no scenario: {', '.join(sorted(unknown))}")
        self.config = config = load_file(settings.config, {})
        # Without a banker in the config there is nothing to compare /bill with.
        self.bankers = banker.bankers(config)
        self.scenarios = [
            s
            for s in SCENARIOS
            if (not settings.only or {s.name, s.baseline} & set(settings.only))
            and (s.server == "tracker" or self.bankers)
        ]
        self.plain_config = settings.work / "tracker-without-banker.yaml"
        # The Kafka collectors tracking paths route to: the rejected-requests
        # stream has a Kafka collector of its own, whose events no path accepted.
        routed = set().union(*(p.collectors for p in config.paths.values()))
        kafka = {
            n
            for n, c in config.collectors.items()
            if n in routed and issubclass(c.cls, KafkaCollector)
        }
        producers = [config.collectors[n].create() for n in sorted(kafka)]
        self.topics = set().union(*(c.topics() for c in producers))
        billed = {t for name in self.bankers for t in config.collectors[name].options.events}
        self.billing_topics = {
            c.routing.get(t, c.default_routing)[0] for c in producers for t in billed
        }
        self.kafka_paths = {
            p.name for p in config.paths.values() if p.batch is None and kafka & set(p.collectors)
        }
        self.files = settings.work / "requests"
        self.throughput: list[dict] = []
        self.latency: list[dict] = []
        self.rss: dict[str, list[float]] = {}
        self.accepted = 0
        self.freshness: banker.Freshness | None = None
        self.flood: dict | None = None
        self.problems: list[str] = []

    def url(self, target: str) -> str:
        """Base URL of a server: ``tracker``, ``plain``, ``nginx`` or ``falcon``."""
        return f"http://127.0.0.1:{self.s.ports[target]}"

    @staticmethod
    def target(scenario: Scenario) -> str:
        """Which server a scenario runs against."""
        return scenario.name if scenario in REFERENCES else scenario.server

    def prepare(self) -> None:
        """Wipe what earlier runs left; write the config without the banker and the requests."""
        for left in ("spool", "log", "plain"):
            # An earlier run's banker spool would be replayed into this run's ledger.
            shutil.rmtree(self.s.work / left, ignore_errors=True)
        if self.bankers:
            banker.without_banker(self.s.config, self.config, self.plain_config)
        shutil.rmtree(self.files, ignore_errors=True)
        self.files.mkdir(parents=True)
        for scenario in (*REFERENCES, *self.scenarios):
            requests = [scenario.build(i) for i in range(DISTINCT)]
            load.write_wrk_requests(requests, self.files / f"{scenario.name}.txt")
            base = self.url(self.target(scenario))
            load.write_vegeta_targets(requests, base, self.files / f"{scenario.name}.json")

    def warm(self, scenario: Scenario) -> None:
        """Drive one scenario with wrk for the warm-up time, if any."""
        if self.s.warmup > 0:
            self.wrk(scenario, self.s.warmup)

    def wrk(self, scenario: Scenario, seconds: float) -> load.Throughput:
        """Drive one scenario with wrk for ``seconds``."""
        return load.wrk(
            self.wrk_bin,
            self.url(self.target(scenario)),
            self.files / f"{scenario.name}.txt",
            self.s.connections,
            seconds,
        )

    def servers(
        self, stack: ExitStack, workers: int, broker: Broker, redis: Redis
    ) -> dict[str, TrackerServer]:
        """Start nginx, the bare Falcon app and the trackers with ``workers`` workers each.

        Returns:
            ``tracker`` (the config under test) and, when a scenario runs
            against it, ``plain`` (the same config without the banker).
        """
        work = self.s.work
        nginx = Nginx(self.nginx_bin, self.s.ports["nginx"], workers, work / "nginx")
        stack.callback(nginx.stop)
        falcon = BareFalcon(self.s.ports["falcon"], workers, work)
        stack.callback(falcon.stop)
        configs = {"tracker": (self.s.config, work)}
        if any(s.server == "plain" for s in self.scenarios):
            configs["plain"] = (self.plain_config, work / "plain")
        trackers = {}
        for name, (config, directory) in configs.items():
            port = self.s.ports[name]
            trackers[name] = TrackerServer(
                config, port, workers, broker.bootstrap, redis.url, directory
            )
            stack.callback(self.stop_tracker, trackers[name])
        return trackers

    def stop_tracker(self, tracker: TrackerServer) -> None:
        """Count what the tracker accepted for Kafka, then stop it (its workers flush)."""
        try:
            counts, idle = tracker.wait_idle()
            if not idle:
                self.problems.append("the tracker was still busy after the last run")
            self.accepted += int(sum(counts.get((p, "accepted"), 0) for p in self.kafka_paths))
        finally:
            code = tracker.stop()
        if code != 0:
            self.problems.append(f"the tracker exited with {code}{tracker.tail()}")

    def measure_throughput(self, broker: Broker, redis: Redis) -> None:
        """Closed loop: each reference, every scenario, then the references again (not in smoke)."""
        with ExitStack() as stack:
            trackers = self.servers(stack, self.s.workers, broker, redis)
            runs: dict[str, list[load.Throughput]] = {r.name: [] for r in REFERENCES}
            for reference in REFERENCES:
                self.warm(reference)
                runs[reference.name].append(self.wrk(reference, self.s.duration))
            for scenario in self.scenarios:
                self.warm(scenario)
                tracker = trackers[scenario.server]
                before = tracker.counters()
                result = self.wrk(scenario, self.s.duration)
                row, problem = report.judge(
                    scenario, result, before, tracker.counters(), self.kafka_paths
                )
                self.throughput.append(row)
                self.problems += [problem] if problem else []
                print(report.progress(self.throughput[-1]), flush=True)
            for reference in () if self.s.smoke else REFERENCES:
                runs[reference.name].append(self.wrk(reference, self.s.duration))
            self.rss["throughput"] = trackers["tracker"].worker_rss_mib()
        references = [report.reference_row(r, runs[r.name]) for r in REFERENCES]
        report.add_ratios(self.throughput, references)
        self.throughput[:0] = references

    def measure_latency(self, broker: Broker, redis: Redis) -> None:
        """Open loop: constant arrival rates with vegeta, on ``latency_workers`` workers.

        Then, when ``/bill`` is measured and the config has a banker, the
        banker's spend freshness at ``freshness_rate`` notices/s.
        """
        with ExitStack() as stack:
            trackers = self.servers(stack, self.s.latency_workers, broker, redis)
            warmed: set[str] = set()
            for scenario, rate in self.latency_runs():
                if scenario.name not in warmed:
                    warmed.add(scenario.name)
                    self.warm(scenario)
                    if self.s.warmup > 0 and scenario.server in trackers:
                        # The warm-up's backlog must not spill into the measured run.
                        trackers[scenario.server].wait_idle(timeout=30)
                targets = self.files / f"{scenario.name}.json"
                server = trackers.get(scenario.server)
                measured = server is not None and scenario not in REFERENCES
                meters = {"tracker": server, "kafka": broker, "redis": redis} if measured else {}
                before = {name: m.cpu_seconds() for name, m in meters.items()}
                result = load.vegeta(
                    self.vegeta_bin, targets, rate, self.s.latency_duration, self.s.windows
                )
                if server is not None:
                    server.wait_idle(timeout=30)  # a backlog's CPU counts too
                # CPU per request of the tracker (master and workers, every thread), the
                # broker and Redis: what the two cores were shared out to, load-independent.
                cpu = {
                    name: round((m.cpu_seconds() - before[name]) / result.requests * 1e6)
                    for name, m in meters.items()
                }
                self.latency.append(
                    {
                        "name": scenario.name,
                        **asdict(result),
                        "worst_p99_ms": result.worst_p99_ms,
                        "cpu_us": cpu,
                    }
                )
                print(report.progress_latency(self.latency[-1]), flush=True)
            if self.bankers and any(s.name == "bill" for s in self.scenarios):
                self.measure_freshness(trackers["tracker"], redis)
            if any(s.name == "rejected" for s in self.scenarios):
                self.measure_flood(trackers["tracker"], broker)
            self.rss["latency"] = trackers["tracker"].worker_rss_mib()

    def measure_flood(self, tracker: TrackerServer, broker: Broker) -> None:
        """Good impressions alone, then under each flood shape (``loadtest/floods.py``)."""
        tracker.wait_idle(timeout=30)
        self.flood = floods.phase(
            self.vegeta_bin,
            tracker.url,
            self.files,
            self.s.flood_seconds,
            self.s.flood_connections,
            meters={"tracker": tracker.cpu_seconds, "kafka": broker.cpu_seconds},
        )
        tracker.wait_idle(timeout=30)
        self.problems += [f"flood: {problem}" for problem in floods.problems(self.flood)]
        print("\n".join(floods.lines(self.flood)), flush=True)

    def latency_runs(self) -> list[tuple[Scenario, int]]:
        """Each scenario's arrival rates, in order (:func:`loadtest.scenarios.latency_order`)."""
        return latency_order((*REFERENCES, *self.scenarios), self.throughput)

    def measure_freshness(self, tracker: TrackerServer, redis: Redis) -> None:
        """Billing notices at a constant rate; time until each one's spend is in Redis."""
        options = self.config.collectors[self.bankers[0]].options
        client = connect(redis.url, False, 5.0)
        self.freshness = banker.freshness(
            tracker.url,
            client,
            options.key_prefix,
            self.s.freshness_rate,
            self.s.latency_duration,
        )
        tracker.wait_idle(timeout=30)
        print(report.progress_freshness(asdict(self.freshness)), flush=True)
        if self.freshness.errors or self.freshness.visible != self.freshness.notices:
            self.problems.append(
                f"banker freshness: {self.freshness.notices} notices sent, "
                f"{self.freshness.errors} not answered 204, "
                f"{self.freshness.notices - self.freshness.visible} never visible in Redis"
            )

    def check_ledger(self, broker: Broker, redis: Redis) -> dict:
        """The banker's figures: its ledger against Kafka, and its own cost in-process."""
        if not self.bankers:
            return {}
        name = self.bankers[0]
        options = self.config.collectors[name].options
        events = banker.read_events(broker.bootstrap, self.billing_topics, set(options.events))
        ledger = Ledger(connect(redis.url, False, 5.0), options.key_prefix)
        figures, problems = banker.check(self.config, events, ledger, name)
        self.problems += problems
        # The in-process timing uses Redis database 1: the checked ledger is in 0.
        environ = {
            **os.environ,
            "TRACKER_REDIS_URL": redis.url.removesuffix("/0") + "/1",
            "TRACKER_KAFKA_BOOTSTRAP": broker.bootstrap,
            "TRACKER_SPOOL_DIR": str(self.s.work / "spool" / "in-process"),
            "TRACKER_LOG_DIR": str(self.s.work / "log" / "in-process"),
        }
        config = load_file(self.s.config, environ)
        cost = banker.collector_cost(config, name, 2000 if self.s.smoke else 20000)
        return {
            "ledger": figures,
            "freshness": asdict(self.freshness) if self.freshness else None,
            "collector": cost,
        }

    def execute(self) -> dict:
        """Run both phases against a fresh broker and Redis; return the results."""
        started, load_before = time.time(), os.getloadavg()[0]
        self.prepare()
        broker = Broker(self.s.ports["kafka"], self.s.work / "kafka", self.s.nice)
        redis = Redis(self.s.ports["redis"], self.s.work / "redis", self.s.nice)
        broker.up()
        try:
            redis.up()
            self.measure_throughput(broker, redis)
            self.measure_latency(broker, redis)
            found = broker.message_count(self.topics)
            banker_figures = self.check_ledger(broker, redis)
        finally:
            try:
                redis.down()
            finally:
                broker.down()
        if found != self.accepted:
            self.problems.append(
                f"KAFKA COUNT MISMATCH: the tracker accepted {self.accepted} events for Kafka, "
                f"{found} arrived in {', '.join(sorted(self.topics))}"
            )
        return {
            "machine": {**report.machine(), "load_average_start": round(load_before, 2)},
            "settings": {k: str(v) for k, v in asdict(self.s).items()},
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started),
            "throughput": self.throughput,
            "latency": self.latency,
            "worker_rss_mib": self.rss,
            "kafka": {"accepted": self.accepted, "arrived": found},
            "banker": banker_figures,
            "flood": self.flood,
            "problems": self.problems,
        }


def main() -> int:
    """Run the benchmark, write the results, print the table; 1 on a failed check."""
    settings = Settings.from_env(dict(os.environ))
    results = Run(settings).execute()
    paths = report.write(results, settings.out)
    print(paths["markdown"].read_text())
    shown = (p.relative_to(ROOT) if p.is_relative_to(ROOT) else p for p in paths.values())
    print("results: " + ", ".join(map(str, shown)))
    for problem in results["problems"]:
        print(f"BENCHMARK FAILED: {problem}", file=sys.stderr)
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
