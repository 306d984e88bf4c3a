"""The benchmark's settings, from the environment (docs/performance.md has the table).

BENCH_SMOKE=1             short runs; results to var/bench/results
BENCH_CONNECTIONS=32      wrk connections (one wrk thread)
BENCH_WORKERS=1           worker processes of each server in the throughput runs
BENCH_LATENCY_WORKERS=2   worker processes of each server in the latency runs
BENCH_DURATION            seconds per throughput run (20; smoke 2)
BENCH_LATENCY_DURATION    seconds per latency window (10; smoke 0.5)
BENCH_WINDOWS             windows per arrival rate, one vegeta attack cut by send time (5)
BENCH_FLOOD_SECONDS       seconds per flood shape (10; smoke 1)
BENCH_FLOOD_CONNECTIONS   the flood's vegeta connection caps (16,64,512)
BENCH_WARMUP              seconds of wrk before each measured run (3; smoke 0: none)
BENCH_ONLY=imp,win        run only these scenarios (the references always run; bill
                          brings bill-plain, /bill without the banker)
BENCH_CONFIG              tracker config (config/tracker.yaml)
BENCH_OUT                 where the results go
BENCH_FRESHNESS_RATE=200  billing notices/s of the banker's freshness run
BENCH_NICE=10             niceness of the broker and Redis (they share the cores with the servers)
BENCH_KAFKA_PORT BENCH_REDIS_PORT BENCH_TRACKER_PORT BENCH_PLAIN_PORT BENCH_NGINX_PORT
BENCH_FALCON_PORT         (free ports)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loadtest.servers import ROOT, free_port


@dataclass
class Settings:
    """What a run does, from the environment."""

    smoke: bool
    connections: int
    workers: int
    latency_workers: int
    duration: float
    latency_duration: float
    windows: int
    flood_seconds: float
    flood_connections: tuple[int, ...]
    warmup: float
    freshness_rate: int
    only: tuple[str, ...]
    config: Path
    out: Path
    work: Path
    ports: dict[str, int] = field(default_factory=dict)
    nice: int = 10

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
            latency_duration=number("BENCH_LATENCY_DURATION", 10, 0.5),
            windows=int(env.get("BENCH_WINDOWS") or 5),
            flood_seconds=number("BENCH_FLOOD_SECONDS", 10, 1),
            flood_connections=tuple(
                int(c) for c in (env.get("BENCH_FLOOD_CONNECTIONS") or "16,64,512").split(",")
            ),
            warmup=number("BENCH_WARMUP", 3, 0),
            freshness_rate=int(env.get("BENCH_FRESHNESS_RATE") or 200),
            only=tuple(n for n in env.get("BENCH_ONLY", "").split(",") if n),
            config=Path(env.get("BENCH_CONFIG") or ROOT / "config" / "tracker.yaml"),
            out=Path(env.get("BENCH_OUT") or default_out),
            work=work,
            nice=int(env.get("BENCH_NICE") or 10),
            ports={
                "kafka": kafka,
                "redis": int(env.get("BENCH_REDIS_PORT") or free_port()),
                "tracker": int(env.get("BENCH_TRACKER_PORT") or free_port()),
                "plain": int(env.get("BENCH_PLAIN_PORT") or free_port()),
                "nginx": int(env.get("BENCH_NGINX_PORT") or free_port()),
                "falcon": int(env.get("BENCH_FALCON_PORT") or free_port()),
            },
        )
