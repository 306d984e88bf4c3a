"""The two load tools: wrk (closed loop, maximum throughput) and vegeta (open loop, latency)."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from loadtest.scenarios import Request

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk.lua"


@dataclass(frozen=True)
class Throughput:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    errors: int
    non_2xx_3xx: int

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Latency:
    """What one vegeta run at a constant arrival rate measured."""

    rate: int
    requests: int
    achieved_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int


def write_wrk_requests(requests: list[Request], path: Path) -> Path:
    """Write ``requests`` in the tab-separated form ``wrk.lua`` reads."""
    lines = []
    for r in requests:
        if "\t" in r.target + r.body or "\n" in r.target + r.body:
            raise ValueError(f"request {r.target!r} holds a tab or newline")
        headers = [f"{name}: {value}" for name, value in r.headers]
        lines.append("\t".join([r.method, r.target, r.body, *headers]))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_vegeta_targets(requests: list[Request], base_url: str, path: Path) -> Path:
    """Write ``requests`` as vegeta's JSON targets, one per line."""
    with path.open("w") as out:
        for r in requests:
            target = {
                "method": r.method,
                "url": base_url + r.target,
                "header": {name: [value] for name, value in r.headers},
            }
            if r.body:
                target["body"] = base64.b64encode(r.body.encode()).decode()
            out.write(json.dumps(target) + "\n")
    return path


def wrk(wrk_bin: str, url: str, requests: Path, connections: int, seconds: float) -> Throughput:
    """Run wrk with one thread and ``connections`` keep-alive connections for ``seconds``."""
    command = [
        wrk_bin,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        str(requests),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(output: str) -> Throughput:
    """Read the ``BENCH {json}`` line that ``wrk.lua`` prints."""
    for line in output.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line.removeprefix("BENCH "))
            break
    else:
        raise RuntimeError(f"wrk printed no BENCH line:\n{output}")
    errors = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return Throughput(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        p999_ms=data["p999_us"] / 1000,
        errors=errors,
        non_2xx_3xx=data["non_2xx_3xx"],
    )


def vegeta(vegeta_bin: str, targets: Path, rate: int, seconds: float) -> Latency:
    """Send ``rate`` requests per second for ``seconds``, whatever the answers take."""
    attack = subprocess.run(
        [
            vegeta_bin,
            "attack",
            "-format=json",
            f"-targets={targets}",
            f"-rate={rate}/1s",
            f"-duration={seconds}s",
            "-timeout=10s",
        ],
        capture_output=True,
        check=True,
    )
    encoded = subprocess.run(
        [vegeta_bin, "encode", "-to=csv"], input=attack.stdout, capture_output=True, check=True
    )
    return parse_vegeta_csv(encoded.stdout.decode(), rate)


def parse_vegeta_csv(text: str, rate: int) -> Latency:
    """Summarise vegeta's CSV results: timestamp (ns), status, latency (ns), ..., error."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise RuntimeError("vegeta recorded no request")
    starts = [int(row[0]) for row in rows]
    latencies = sorted(int(row[2]) / 1e6 for row in rows)
    errors = sum(1 for row in rows if row[5] or not 200 <= int(row[1]) < 400)
    span = (max(starts) - min(starts)) / 1e9
    return Latency(
        rate=rate,
        requests=len(rows),
        achieved_rps=(len(rows) - 1) / span if span > 0 else 0.0,
        p50_ms=percentile(latencies, 50),
        p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99),
        p999_ms=percentile(latencies, 99.9),
        max_ms=latencies[-1],
        errors=errors,
    )


def percentile(ordered: list[float], pct: float) -> float:
    """Return the nearest-rank ``pct`` percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(round(len(ordered) * pct / 100, 6)))
    return ordered[rank - 1]
