"""The two load tools: wrk (closed loop, maximum throughput) and vegeta (open loop, latency)."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
class Window:
    """One window of a vegeta run: the tail is judged window by window."""

    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int


@dataclass(frozen=True)
class Latency:
    """What one vegeta run at a constant arrival rate measured, pooled and per window."""

    rate: int
    requests: int
    achieved_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int
    windows: tuple[Window, ...] = ()

    @property
    def worst_p99_ms(self) -> float:
        """The highest p99 of any window (the pooled p99 without windows)."""
        return max((w.p99_ms for w in self.windows), default=self.p99_ms)

    @property
    def worst_max_ms(self) -> float:
        """The slowest request of the run."""
        return self.max_ms


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


#: vegeta's own garbage collector, put off for the length of an attack. At its
#: default (GOGC=100) vegeta starts with a heap of a few MB and collects many
#: times a second while it grows, on the two cores the tracker runs on:
#: /imp at 2,000 req/s, the first second's p99 was 28.5 ms and the worst
#: window's 4.76 ms, against 2.3 and 1.68 ms with GOGC=off (docs/performance.md,
#: "Stalls"). With GOGC=off it collects only when its heap reaches GOMEMLIMIT:
#: about 8 KB per request, so an attack of 50 s at 2,500 req/s never does.
VEGETA_GC = ("GOGC=off", "GOMEMLIMIT=3GiB")


def attack_command(
    vegeta_bin: str, targets: Path, rate: int, seconds: float, connections: int = 0
) -> list[str]:
    """vegeta's command line: ``rate`` req/s for ``seconds``, binary results on stdout.

    ``connections`` caps vegeta's workers and its keep-alive connections (0:
    vegeta's defaults, as many workers as the rate needs).
    """
    command = [
        "env",
        *VEGETA_GC,
        vegeta_bin,
        "attack",
        "-format=json",
        f"-targets={targets}",
        f"-rate={rate}/1s",
        f"-duration={seconds:g}s",
        "-timeout=10s",
    ]
    if connections:
        command += [f"-workers={connections}", f"-max-workers={connections}"]
        command += [f"-connections={connections}", f"-max-connections={connections}"]
    return command


class Attack:
    """vegeta in the background, its results read off the pipe as they come.

    Left unread, the pipe fills after a few hundred results and vegeta's
    workers block on it: capped (``-max-workers``) the attack then sends a
    tenth of its rate, uncapped it starts a goroutine per blocked request.
    """

    def __init__(self, command: list[str], **popen: Any) -> None:
        self.popen = subprocess.Popen(command, stdout=subprocess.PIPE, **popen)
        self.pid = self.popen.pid
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.popen.stdout.read(1 << 16), b""):
            self._chunks.append(chunk)

    def results(self, timeout: float | None = None) -> bytes:
        """Wait for the attack to end; return its binary results."""
        self.popen.wait(timeout)
        self._reader.join(timeout)
        return b"".join(self._chunks)


def encode_csv(vegeta_bin: str, results: bytes) -> list[list[str]]:
    """Turn vegeta's binary results into CSV rows."""
    encoded = subprocess.run(
        [vegeta_bin, "encode", "-to=csv"], input=results, capture_output=True, check=True
    )
    return list(csv.reader(io.StringIO(encoded.stdout.decode())))


def vegeta(vegeta_bin: str, targets: Path, rate: int, seconds: float, windows: int = 1) -> Latency:
    """Send ``rate`` requests per second for ``windows`` windows of ``seconds`` each.

    One attack, cut into windows afterwards by each request's send time, so
    there is no gap between windows for a stall to fall into.
    """
    attack = subprocess.run(
        attack_command(vegeta_bin, targets, rate, seconds * windows),
        capture_output=True,
        check=True,
    )
    return summarise(encode_csv(vegeta_bin, attack.stdout), rate, windows)


def parse_vegeta_csv(text: str, rate: int, windows: int = 1) -> Latency:
    """Summarise vegeta's CSV results: timestamp (ns), status, latency (ns), ..., error.

    With ``windows`` > 1 the run is also cut into that many windows of equal
    duration by send time, each summarised on its own.
    """
    return summarise(list(csv.reader(io.StringIO(text))), rate, windows)


def summarise(rows: list[list[str]], rate: int, windows: int = 1) -> Latency:
    """Summarise vegeta's CSV rows (see :func:`parse_vegeta_csv`)."""
    if not rows:
        raise RuntimeError("vegeta recorded no request")
    starts = [int(row[0]) for row in rows]
    first, span = min(starts), (max(starts) - min(starts)) / 1e9
    cut: list[list[list[str]]] = [[] for _ in range(windows)]
    width = span / windows if span > 0 else 1.0
    for start, row in zip(starts, rows, strict=True):
        cut[min(windows - 1, int((start - first) / 1e9 / width))].append(row)
    pooled = _figures(rows)
    return Latency(
        rate=rate,
        requests=len(rows),
        achieved_rps=(len(rows) - 1) / span if span > 0 else 0.0,
        p50_ms=pooled.p50_ms,
        p90_ms=percentile(_latencies(rows), 90),
        p99_ms=pooled.p99_ms,
        p999_ms=percentile(_latencies(rows), 99.9),
        max_ms=pooled.max_ms,
        errors=pooled.errors,
        windows=tuple(_figures(w) for w in cut if w) if windows > 1 else (),
    )


def is_error(row: list[str]) -> bool:
    """Whether a vegeta result is a transport error or an answer outside 2xx/3xx."""
    return bool(row[5]) or not 200 <= int(row[1]) < 400


def _latencies(rows: list[list[str]]) -> list[float]:
    return sorted(int(row[2]) / 1e6 for row in rows)


def _figures(rows: list[list[str]]) -> Window:
    latencies = _latencies(rows)
    return Window(
        requests=len(rows),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1],
        errors=sum(1 for row in rows if is_error(row)),
    )


def percentile(ordered: list[float], pct: float) -> float:
    """Return the nearest-rank ``pct`` percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(round(len(ordered) * pct / 100, 6)))
    return ordered[rank - 1]
