"""The benchmark's flood phase: good impressions under floods of every shape, with vegeta.

Good impressions arrive at a constant 300 req/s while bad requests arrive at
3,000 req/s from a second vegeta whose workers and keep-alive connections are
capped at 16, 64 or 512: each kind of bad request alone (unknown paths,
unfilled price macros, unlisted click hosts, oversized fields, broken escapes)
and all of them mixed. How a flood shapes its connections matters as much as
its rate: few busy connections and many idle ones load meinheld's accept loop
and the two workers' balance differently. Each shape is one window; the phase
reports every window's good p99 and max, the worst, and the share of good
requests answered 200. ``loadtest/flood.py`` (the integration test's own
generator) is unchanged.

Each window also records what its requests cost: the CPU per request (good
and bad) of the tracker, of the broker and of the load tool (every vegeta the
window ran, reaped children), and the share of the machine left idle. The
broker and vegeta do nearly the same work per request whatever the tracker
answers, so when their cost per request rises with the tracker's, the host
itself was slower in that window (a noisy neighbour takes cycles a guest is
never told about); when only the tracker's rises, the tracker did more.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from loadtest import load
from loadtest.flood import BAD_RATE, GOOD, GOOD_RATE
from loadtest.scenarios import BROWSER

#: Each kind of bad request, alone; ``mixed`` sends all of them.
BAD_KINDS: dict[str, tuple[str, ...]] = {
    "404": ("/wp-login.php", "/no-such-path?cid=c1", "/.env"),
    "macro": (
        "/bill?aid=a1&price=${AUCTION_PRICE}",
        "/win?aid=a1&price=%24%7BAUCTION_PRICE%7D",
        "/bill?aid=a2&price=${AUCTION_PRICE:B64}",
    ),
    "click-host": (
        "/click?cid=c1&url=https%3A%2F%2Fevil.example%2F",
        "/click?cid=c2&url=https%3A%2F%2Fphish.example%2Flogin",
    ),
    "oversized": ("/imp?cid=" + "x" * 900 + "&price=1", "/win?aid=" + "a" * 300 + "&price=1"),
    "escape": ("/conv?cid=%zz", "/imp?cid=%E2%82&price=1", "/imp?cid=c1&price=%", "/win?aid=%G1"),
}
BAD_KINDS["mixed"] = tuple(t for targets in BAD_KINDS.values() for t in targets)
#: The flood's connection caps: a handful of busy connections to many idle ones.
CONNECTIONS = (16, 64, 512)
#: The share of good requests that must be answered 200 under every flood (issue 21).
GOOD_SHARE = 0.999


def write_targets(base_url: str, directory: Path) -> dict[str, Path]:
    """Write vegeta's targets: ``good`` and one file per bad kind."""
    directory.mkdir(parents=True, exist_ok=True)
    header = {"User-Agent": [BROWSER]}
    files = {}
    for kind, targets in {"good": tuple(t.decode() for t in GOOD), **BAD_KINDS}.items():
        files[kind] = directory / f"flood-{kind}.json"
        files[kind].write_text(
            "".join(
                json.dumps({"method": "GET", "url": base_url + t, "header": header}) + "\n"
                for t in targets
            )
        )
    return files


def _summary(rows: list[list[str]], seconds: float) -> dict:
    """Counts, statuses, transport errors and latency of one vegeta run."""
    statuses = Counter(row[1] for row in rows)
    latency = load.summarise(rows, 0) if rows else None
    return {
        "sent": len(rows),
        "sent_per_s": round(len(rows) / seconds, 1),
        "statuses": dict(sorted(statuses.items())),
        # vegeta fills its error column for a 4xx too; no status is no answer.
        "transport_errors": statuses.get("0", 0),
        "share_200": round(statuses.get("200", 0) / len(rows), 5) if rows else 0.0,
        "p50_ms": round(latency.p50_ms, 2) if latency else None,
        "p99_ms": round(latency.p99_ms, 2) if latency else None,
        "max_ms": round(latency.max_ms, 1) if latency else None,
    }


def _good(vegeta_bin: str, files: dict[str, Path], rate: int, seconds: float) -> dict:
    attack = subprocess.run(
        load.attack_command(vegeta_bin, files["good"], rate, seconds),
        capture_output=True,
        check=True,
    )
    return _summary(load.encode_csv(vegeta_bin, attack.stdout), seconds)


def phase(
    vegeta_bin: str,
    base_url: str,
    directory: Path,
    seconds: float,
    connections: tuple[int, ...] = CONNECTIONS,
    good_rate: int = GOOD_RATE,
    bad_rate: int = BAD_RATE,
    meters: Mapping[str, Callable[[], float]] | None = None,
) -> dict:
    """Good traffic alone, then under each flood shape, one ``seconds`` window each.

    Args:
        meters: Each returns a server's CPU seconds so far, by name (``tracker``:
            master and workers; ``kafka``: the broker).

    Returns:
        ``alone`` (the good traffic's figures), ``shapes`` (one entry per
        connection cap and bad kind: ``good`` and ``bad`` figures, and
        ``cost``: CPU per request and idle share), the ``worst_good_p99_ms``
        and the ``lowest_good_share_200``.
    """
    files = write_targets(base_url, directory)
    alone = _good(vegeta_bin, files, good_rate, seconds)
    shapes = []
    for cap in connections:
        for kind in BAD_KINDS:
            start = _counters(meters or {})
            # The flood starts first and ends last: the good window is wholly inside it.
            command = load.attack_command(vegeta_bin, files[kind], bad_rate, seconds + 1.0, cap)
            flood = load.Attack(command, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            good = _good(vegeta_bin, files, good_rate, seconds)
            out = flood.results(timeout=seconds + 60)
            bad = _summary(load.encode_csv(vegeta_bin, out), seconds + 1.0)
            cost = _cost(start, _counters(meters or {}), good["sent"] + bad["sent"])
            shapes.append(
                {"kind": kind, "connections": cap, "good": good, "bad": bad, "cost": cost}
            )
    good_runs = [alone, *(s["good"] for s in shapes)]
    return {
        "good_rate": good_rate,
        "bad_rate": bad_rate,
        "seconds": seconds,
        "alone": alone,
        "shapes": shapes,
        "worst_good_p99_ms": max(s["good"]["p99_ms"] for s in shapes) if shapes else None,
        "worst_good_max_ms": max(s["good"]["max_ms"] for s in shapes) if shapes else None,
        "lowest_good_share_200": min(g["share_200"] for g in good_runs),
    }


def _counters(meters: Mapping[str, Callable[[], float]]) -> tuple[dict[str, float], float, float]:
    """CPU seconds so far of each server and of vegeta (reaped children); idle seconds; the time."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {name: meter() for name, meter in meters.items()}
    cpu["vegeta"] = children.ru_utime + children.ru_stime
    with open("/proc/stat") as stat:
        idle = int(stat.readline().split()[4]) / os.sysconf("SC_CLK_TCK")
    return cpu, idle, time.monotonic()


def _cost(start: tuple, end: tuple, requests: int) -> dict:
    """What one window's requests cost: CPU us per request of each, the machine's idle share."""
    (cpu0, idle0, wall0), (cpu1, idle1, wall1) = start, end
    return {
        "cpu_us": {
            name: round((cpu1[name] - cpu0[name]) / max(requests, 1) * 1e6) for name in cpu0
        },
        "idle_share": round((idle1 - idle0) / ((wall1 - wall0) * (os.cpu_count() or 1)), 3),
    }


def problems(figures: dict) -> list[str]:
    """What the phase shows wrong, never timing.

    Fewer than 99.9% of the good requests answered 200 in a window, a 5xx, or
    a connection closed without a status line (a vegeta transport error other
    than its own timeout).
    """
    found = []
    runs = [("good traffic alone", figures["alone"], True)]
    for s in figures["shapes"]:
        shape = f"{s['kind']} flood on {s['connections']} connections"
        runs += [(f"good traffic, {shape}", s["good"], True), (shape, s["bad"], False)]
    for name, run, good in runs:
        if good and run["share_200"] < GOOD_SHARE:
            found.append(f"{name}: {run['share_200']:.2%} answered 200: {run['statuses']}")
        if any(status.startswith("5") for status in run["statuses"]):
            found.append(f"{name}: a 5xx: {run['statuses']}")
        if run["transport_errors"]:
            found.append(f"{name}: {run['transport_errors']} requests without an answer")
    return found


def lines(figures: dict) -> list[str]:
    """The flood tables of ``results.md``: good p99 / max per kind and cap, then each cost."""
    alone = figures["alone"]
    intro = (
        f"Flood: good impressions at {figures['good_rate']:,} req/s while bad requests "
        f"arrive at {figures['bad_rate']:,} req/s from vegeta capped at each connection "
        f"count, one {figures['seconds']:g} s window per shape. Good alone: p99 "
        f"{alone['p99_ms']:.2f} ms, max {alone['max_ms']:.1f} ms. Worst good p99 under a "
        f"flood: {figures['worst_good_p99_ms']:.2f} ms (max {figures['worst_good_max_ms']:.1f} "
        f"ms); lowest share of good requests answered 200: "
        f"{figures['lowest_good_share_200']:.2%}."
    )
    out = [intro, "", *_table(figures, "good p99 / max ms, bad sent/s", _latency_cell)]
    if all("cost" in s for s in figures["shapes"]):
        out += [
            "",
            "What each window's requests cost: CPU per request (good and bad) of the tracker, "
            "of the load tool and of the broker, and the share of both cores left idle. The "
            "broker and vegeta do nearly the same work per request in every window: when their "
            "cost rises with the tracker's, the host was slower in that window.",
            "",
            *_table(figures, "tracker / vegeta / Kafka us per request, idle", _cost_cell),
        ]
    return out


def _table(figures: dict, heading: str, cell: Callable[[dict], str]) -> list[str]:
    """A markdown table: a row per bad kind, a column per connection cap, ``cell`` of each shape."""
    caps = sorted({s["connections"] for s in figures["shapes"]})
    shapes = {(s["kind"], s["connections"]): s for s in figures["shapes"]}
    out = [
        "| bad kind | " + " | ".join(f"{c} conns: {heading}" for c in caps) + " |",
        "|---|" + "--:|" * len(caps),
    ]
    for kind in BAD_KINDS:
        cells = [cell(shapes[kind, cap]) if (kind, cap) in shapes else "" for cap in caps]
        out.append(f"| {kind} | " + " | ".join(cells) + " |")
    return out


def _latency_cell(shape: dict) -> str:
    good = shape["good"]
    return f"{good['p99_ms']:.2f} / {good['max_ms']:.0f}, {shape['bad']['sent_per_s']:,.0f}"


def _cost_cell(shape: dict) -> str:
    cpu = shape["cost"]["cpu_us"]
    spent = " / ".join(str(cpu.get(name, "-")) for name in ("tracker", "vegeta", "kafka"))
    return f"{spent}, {shape['cost']['idle_share']:.0%}"
