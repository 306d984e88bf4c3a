"""Open-loop HTTP load at a constant rate over loopback: good or bad tracking requests.

A bounded, self-stopping generator for the flood benchmark: requests are
scheduled at ``start + i / rate`` whatever the server does, spread over
keep-alive connections, and each latency is measured from the scheduled time
(so a stalled server is not hidden by a stalled client). It prints one JSON
summary line and asserts nothing.

Usage::

    python loadtest/flood.py --port 8080 --kind bad --rate 3000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

#: Valid impressions: what must stay fast.
GOOD = [
    b"/imp?cid=camp-%d&crid=cr-1&aid=auc-%d&iid=i1&bid=b1&price=1.25" % (i, i) for i in range(64)
]
#: What a flood holds: oversized fields, unlisted click hosts, unfilled price
#: macros, unknown paths, broken escapes.
BAD = [
    b"/imp?cid=" + b"x" * 900 + b"&price=1",
    b"/imp?cid=c1&price=%E2%82%AC",
    b"/click?cid=c1&url=https%3A%2F%2Fevil.example%2F",
    b"/win?aid=a1&price=%24%7BAUCTION_PRICE%7D",
    b"/bill?aid=a1&price=${AUCTION_PRICE}",
    b"/wp-login.php",
    b"/conv?cid=%zz",
    b"/vast/nope?cid=c1",
]


def request_bytes(target: bytes) -> bytes:
    """One keep-alive GET."""
    return b"GET " + target + b" HTTP/1.1\r\nHost: tracker\r\nUser-Agent: flood/1\r\n\r\n"


@dataclass
class Summary:
    """What the generator saw."""

    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    dropped: int = 0

    def figures(self, elapsed: float) -> dict:
        """Return the counts, the rates over ``elapsed`` seconds and latency percentiles in ms."""
        ordered = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return (
                round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)
                if ordered
                else None
            )

        return {
            "sent": self.sent,
            "answered": len(ordered),
            "sent_per_s": round(self.sent / elapsed, 1),
            "answered_per_s": round(len(ordered) / elapsed, 1),
            "dropped": self.dropped,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
        }


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the server keeps the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    if length:
        await reader.readexactly(length)
    return status, keep


async def connection(
    host: str, port: int, schedule: list[tuple[float, bytes]], summary: Summary
) -> None:
    """Send this connection's share of the schedule, reconnecting when the server closes."""
    reader = writer = None
    for at, data in schedule:
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        summary.sent += 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(data)
            status, keep = await asyncio.wait_for(read_response(reader), 10)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ValueError,
        ):
            summary.dropped += 1
            writer = _close(writer)
            continue
        summary.latencies.append(time.monotonic() - at)
        summary.statuses[status] += 1
        if not keep:
            writer = _close(writer)
    _close(writer)


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()
    return None


async def run(
    host: str, port: int, targets: list[bytes], rate: float, seconds: float, connections: int
) -> dict:
    """Send ``rate`` requests per second for ``seconds``; return the summary figures."""
    rng = random.Random(9)
    start = time.monotonic() + 0.2
    total = int(rate * seconds)
    schedules: list[list[tuple[float, bytes]]] = [[] for _ in range(connections)]
    for i in range(total):
        schedules[i % connections].append((start + i / rate, request_bytes(rng.choice(targets))))
    summary = Summary()
    await asyncio.gather(*(connection(host, port, s, summary) for s in schedules))
    return summary.figures(time.monotonic() - start)


#: The flood benchmark's rates (issue 9): good impressions, and bad requests around them.
GOOD_RATE, BAD_RATE = 300, 3000


def _generator(port: int, kind: str, rate: int, seconds: float, connections: int):
    args = [sys.executable, __file__, "--port", str(port), "--kind", kind, "--rate", str(rate)]
    args += ["--seconds", str(seconds), "--connections", str(connections)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def _figures(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=180)
    if proc.returncode != 0:
        raise RuntimeError(f"loadtest/flood.py exited with {proc.returncode}")
    return json.loads(out)


def phase(port: int, seconds: float, good_rate: int = GOOD_RATE, bad_rate: int = BAD_RATE) -> dict:
    """Good traffic alone, then the same while the flood runs, each in its own process.

    Returns:
        ``alone`` and ``flooded`` (the good traffic's figures) and ``bad``.
    """
    alone = _figures(_generator(port, "good", good_rate, seconds, 8))
    # Enough connections that the flood's rate holds while answers are slow.
    bad = _generator(port, "bad", bad_rate, seconds + 2, 300)
    time.sleep(1)
    flooded = _figures(_generator(port, "good", good_rate, seconds, 8))
    return {"alone": alone, "flooded": flooded, "bad": _figures(bad)}


def problems(figures: dict) -> list[str]:
    """List what :func:`phase`'s figures show wrong (never timing).

    A good impression not answered 200, a 5xx, or a dropped request.
    """
    found = []
    for name, run in figures.items():
        if name != "bad" and run["statuses"] != {"200": run["sent"]}:
            found.append(f"good traffic {name}: not every impression answered 200: {run}")
        if [s for s in run["statuses"] if int(s) >= 500] or run["dropped"]:
            found.append(f"{name} traffic: a 5xx or a dropped request: {run}")
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the generator and print its summary as one JSON line."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--host", default="127.0.0.1")
    args.add_argument("--port", type=int, required=True)
    args.add_argument("--kind", choices=("good", "bad"), default="good")
    args.add_argument("--rate", type=float, default=300.0)
    args.add_argument("--seconds", type=float, default=10.0)
    args.add_argument("--connections", type=int, default=0, help="default: rate / 50, at least 4")
    opts = args.parse_args(argv)
    connections = opts.connections or max(4, int(opts.rate / 50))
    targets = GOOD if opts.kind == "good" else BAD
    figures = asyncio.run(run(opts.host, opts.port, targets, opts.rate, opts.seconds, connections))
    print(json.dumps({"kind": opts.kind, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
