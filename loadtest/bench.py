"""Run the benchmark: references and tracker scenarios, then the Kafka count check.

Usage: ``make bench`` (full run, results in loadtest/results/) or
``make bench-smoke`` (a few seconds per scenario, results in var/bench/results/).
Both go through ``loadtest/bench.sh``, which installs the tools. Settings come
from the environment (see docs/performance.md):

BENCH_SMOKE=1             short runs; results to var/bench/results
BENCH_CONNECTIONS=32      wrk connections (one wrk thread)
BENCH_WORKERS=1           worker processes of each server in the throughput runs
BENCH_LATENCY_WORKERS=2   worker processes of each server in the latency runs
BENCH_DURATION            seconds per throughput run (20; smoke 2)
BENCH_LATENCY_DURATION    seconds per latency run (15; smoke 1)
BENCH_WARMUP              seconds of wrk before each measured run (3; smoke 0: none)
BENCH_ONLY=imp,win        run only these scenarios (the references always run)
BENCH_CONFIG              tracker config (config/tracker.yaml)
BENCH_OUT                 where the results go
BENCH_KAFKA_NICE=10       the broker's niceness (it shares the cores; only the tracker uses it)
BENCH_KAFKA_PORT BENCH_TRACKER_PORT BENCH_NGINX_PORT BENCH_FALCON_PORT  (free ports)

Exit status: 0, or 1 when events that the tracker accepted are missing from
Kafka (or more arrived) or a scenario's requests were not answered as it
expects. Timing never fails the run.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from collectors.kafka import KafkaCollector
from loadtest import load, report
from loadtest.scenarios import HALF, REFERENCES, SCENARIOS, Scenario
from loadtest.servers import ROOT, BareFalcon, Broker, Nginx, TrackerServer, free_port
from tracker.config import load_file

#: Distinct requests built per scenario; the load tools replay them in a loop.
DISTINCT = 4000


@dataclass
class Settings:
    """What a run does, from the environment."""

    smoke: bool
    connections: int
    workers: int
    latency_workers: int
    duration: float
    latency_duration: float
    warmup: float
    only: tuple[str, ...]
    config: Path
    out: Path
    work: Path
    ports: dict[str, int] = field(default_factory=dict)
    kafka_nice: int = 10

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        """Read the ``BENCH_*`` variables."""
        smoke = env.get("BENCH_SMOKE", "") not in ("", "0")

        def number(name: str, full: float, short: float) -> float:
            return float(env.get(name) or (short if smoke else full))

        work = ROOT / "var" / "bench"
        default_out = work / "results" if smoke else ROOT / "loadtest" / "results"
        kafka = int(env.get("BENCH_KAFKA_PORT") or free_port(pair=True))
        return cls(
            smoke=smoke,
            connections=int(env.get("BENCH_CONNECTIONS") or 32),
            workers=int(env.get("BENCH_WORKERS") or 1),
            latency_workers=int(env.get("BENCH_LATENCY_WORKERS") or 2),
            duration=number("BENCH_DURATION", 20, 2),
            latency_duration=number("BENCH_LATENCY_DURATION", 15, 1),
            warmup=number("BENCH_WARMUP", 3, 0),
            only=tuple(n for n in env.get("BENCH_ONLY", "").split(",") if n),
            config=Path(env.get("BENCH_CONFIG") or ROOT / "config" / "tracker.yaml"),
            out=Path(env.get("BENCH_OUT") or default_out),
            work=work,
            kafka_nice=int(env.get("BENCH_KAFKA_NICE") or 10),
            ports={
                "kafka": kafka,
                "tracker": int(env.get("BENCH_TRACKER_PORT") or free_port()),
                "nginx": int(env.get("BENCH_NGINX_PORT") or free_port()),
                "falcon": int(env.get("BENCH_FALCON_PORT") or free_port()),
            },
        )


class Run:
    """One benchmark run: its servers, the figures measured and the problems found."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.wrk_bin = shutil.which("wrk") or "wrk"
        self.vegeta_bin = str(ROOT / "var" / "bin" / "vegeta")
        self.nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        self.scenarios = [s for s in SCENARIOS if not settings.only or s.name in settings.only]
        unknown = set(settings.only) - {s.name for s in SCENARIOS}
        if unknown:
            raise SystemExit(f"BENCH_ONLY names no scenario: {', '.join(sorted(unknown))}")
        config = load_file(settings.config, {})
        # The Kafka collectors tracking paths route to: the rejected-requests
        # stream has a Kafka collector of its own, whose events no path accepted.
        routed = set().union(*(p.collectors for p in config.paths.values()))
        kafka = {
            n
            for n, c in config.collectors.items()
            if n in routed and issubclass(c.cls, KafkaCollector)
        }
        self.topics = set().union(*(config.collectors[n].create().topics() for n in kafka))
        self.kafka_paths = {
            p.name for p in config.paths.values() if p.batch is None and kafka & set(p.collectors)
        }
        self.files = settings.work / "requests"
        self.throughput: list[dict] = []
        self.latency: list[dict] = []
        self.rss: dict[str, list[float]] = {}
        self.accepted = 0
        self.problems: list[str] = []

    def url(self, target: str) -> str:
        """Base URL of a server: ``tracker``, ``nginx`` or ``falcon``."""
        return f"http://127.0.0.1:{self.s.ports[target]}"

    @staticmethod
    def target(scenario: Scenario) -> str:
        """Which server a scenario runs against."""
        return scenario.name if scenario in REFERENCES else "tracker"

    def prepare(self) -> None:
        """Write each scenario's requests for wrk and for vegeta."""
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

    def servers(self, stack: ExitStack, workers: int, broker: Broker) -> TrackerServer:
        """Start nginx, the bare Falcon app and the tracker with ``workers`` workers each."""
        work = self.s.work
        nginx = Nginx(self.nginx_bin, self.s.ports["nginx"], workers, work / "nginx")
        stack.callback(nginx.stop)
        falcon = BareFalcon(self.s.ports["falcon"], workers, work)
        stack.callback(falcon.stop)
        port = self.s.ports["tracker"]
        tracker = TrackerServer(self.s.config, port, workers, broker.bootstrap, work)
        stack.callback(self.stop_tracker, tracker)
        return tracker

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

    def measure_throughput(self, broker: Broker) -> None:
        """Closed loop: each reference, every scenario, then the references again (not in smoke)."""
        with ExitStack() as stack:
            tracker = self.servers(stack, self.s.workers, broker)
            runs: dict[str, list[load.Throughput]] = {r.name: [] for r in REFERENCES}
            for reference in REFERENCES:
                self.warm(reference)
                runs[reference.name].append(self.wrk(reference, self.s.duration))
            for scenario in self.scenarios:
                self.warm(scenario)
                before = tracker.counters()
                result = self.wrk(scenario, self.s.duration)
                self.throughput.append(self.judge(scenario, result, before, tracker.counters()))
                print(report.progress(self.throughput[-1]), flush=True)
            for reference in () if self.s.smoke else REFERENCES:
                runs[reference.name].append(self.wrk(reference, self.s.duration))
            self.rss["throughput"] = tracker.worker_rss_mib()
        references = [report.reference_row(r, runs[r.name]) for r in REFERENCES]
        report.add_ratios(self.throughput, references)
        self.throughput[:0] = references

    def judge(self, scenario: Scenario, result: load.Throughput, before: dict, after: dict) -> dict:
        """Build a scenario's row and check its outcome against what it expects."""
        delta = {k: v - before.get(k, 0) for k, v in after.items()}
        accepted = int(sum(delta.get((p, "accepted"), 0) for p in self.kafka_paths))
        rejected = int(sum(v for (_, outcome), v in delta.items() if outcome == "rejected"))
        dropped = int(sum(v for (_, outcome), v in delta.items() if outcome == "dropped"))
        row = report.throughput_row(scenario, result, accepted, rejected + dropped)
        # Socket errors and timeouts are shown, not judged: under load they are timing.
        failed = scenario.expect == "accepted" and result.non_2xx_3xx
        wrong = {
            "accepted": rejected or dropped or not accepted,
            "rejected": accepted or not result.non_2xx_3xx,
            "mixed": not accepted or not rejected,
        }[scenario.expect]
        if failed or wrong:
            self.problems.append(
                f"scenario {scenario.name} expects {scenario.expect} requests, but: "
                f"{accepted} events accepted, {rejected} rejected, {dropped} dropped, "
                f"{result.non_2xx_3xx} answers not 2xx/3xx, {result.errors} socket errors"
            )
        return row

    def measure_latency(self, broker: Broker) -> None:
        """Open loop: constant arrival rates with vegeta, on ``latency_workers`` workers."""
        maxima = {row["name"]: row["rps"] for row in self.throughput}
        with ExitStack() as stack:
            tracker = self.servers(stack, self.s.latency_workers, broker)
            for scenario in (*REFERENCES, *self.scenarios):
                rates = sorted(
                    {int(maxima[scenario.name] / 2) if r == HALF else r for r in scenario.rates}
                )
                if rates:
                    self.warm(scenario)
                for rate in (r for r in rates if r > 0):
                    targets = self.files / f"{scenario.name}.json"
                    result = load.vegeta(self.vegeta_bin, targets, rate, self.s.latency_duration)
                    tracker.wait_idle(timeout=30)
                    self.latency.append({"name": scenario.name, **asdict(result)})
                    print(report.progress_latency(self.latency[-1]), flush=True)
            self.rss["latency"] = tracker.worker_rss_mib()

    def execute(self) -> dict:
        """Run both phases against a fresh broker; return the results."""
        started, load_before = time.time(), os.getloadavg()[0]
        self.prepare()
        broker = Broker(self.s.ports["kafka"], self.s.work / "kafka", self.s.kafka_nice)
        broker.up()
        try:
            self.measure_throughput(broker)
            self.measure_latency(broker)
            found = broker.message_count(self.topics)
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
            "problems": self.problems,
        }


def main() -> int:
    """Run the benchmark, write the results, print the table; 1 on a count mismatch."""
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
