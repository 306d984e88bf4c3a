"""What the user_agent and geoip preprocessors cost when their caches miss.

``make stages`` times every preprocessor of ``/imp`` with warm caches (one
browser, one address, as a busy tracker mostly sees); this module adds what a
first sight costs: a ua-parser parse of each of a realistic mix of user agents,
and a database lookup of distinct addresses, and the memory a full cache takes.
It also writes the small country database the stages run with when
``TRACKER_GEOIP_DB`` names none (mmdb-writer, from the test extra).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path
from statistics import mean, median

#: A mix of user agents in roughly the proportions of ad traffic (one a line):
#: Chrome and Safari on phones first, then desktops, in-app web views, tablets,
#: TVs, a console and crawlers.
MIX = tuple(Path(__file__).with_name("useragents.txt").read_text().splitlines())
#: Where the generated database goes, and the networks it knows (the stages'
#: client, 203.0.113.7, among them).
DATABASE = Path("var/bench/geo/country.mmdb")
NETWORKS = {f"{a}.0.0.0/8": "DE" for a in range(1, 100)} | {"203.0.113.0/24": "FR"}


def write_database(root: Path) -> Path:
    """Write the stages' country database under ``root`` and return its path."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="Bench-Country")
    for network, country in NETWORKS.items():
        writer.insert_network(IPSet([network]), {"country": {"iso_code": country}})
    path = root / DATABASE
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path


def _stats(ns: list[int]) -> dict:
    return {
        "median_us": median(ns) / 1000,
        "mean_us": mean(ns) / 1000,
        "max_us": max(ns) / 1000,
    }


def miss_costs(database: Path) -> dict[str, dict]:
    """Time uncached parses of :data:`MIX` and uncached lookups, and a full cache's memory."""
    from tracker.preprocessors.geo import GeoIp, GeoIpOptions
    from tracker.preprocessors.uaparse import UaClassifier

    classifier = UaClassifier(cache_size=16)
    parses = []
    for _ in range(5):
        for user_agent in MIX:
            t = time.perf_counter_ns()
            classifier._classify(user_agent)
            parses.append(time.perf_counter_ns() - t)
    geo = GeoIp("geo", GeoIpOptions().load({"database": str(database)}))
    geo.open()
    lookups = []
    for i in range(2000):
        ip = f"{1 + i % 99}.{i // 256 % 256}.{i % 256}.{i % 200 + 1}"
        t = time.perf_counter_ns()
        geo.lookup.__wrapped__(ip)
        lookups.append(time.perf_counter_ns() - t)
    big = UaClassifier(cache_size=2000)
    memory = {
        "user_agent": _cache_kib(
            lambda: [big.classify(f"{MIX[i % len(MIX)]} build/{i}") for i in range(1000)]
        ),
        "geoip": _cache_kib(lambda: [geo.lookup(f"1.2.{i // 256}.{i % 256}") for i in range(1000)]),
    }
    geo.close(1)
    return {
        "user_agent parse (cache miss)": _stats(parses),
        "geoip lookup (cache miss)": _stats(lookups),
        "memory": memory,
    }


def _cache_kib(fill) -> float:
    """Memory that ``fill()`` leaves allocated (KiB): 1,000 cache entries with their keys."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    fill()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return round(grown / 1024, 1)


def miss_table(costs: dict[str, dict]) -> str:
    """Render :func:`miss_costs` as Markdown."""
    lines = ["| first sight | median µs | mean µs | max µs |", "|---|--:|--:|--:|"]
    for name, s in costs.items():
        if name != "memory":
            lines.append(
                f"| {name} | {s['median_us']:.1f} | {s['mean_us']:.1f} | {s['max_us']:.1f} |"
            )
    memory = ", ".join(f"{k} {v} KiB" for k, v in costs["memory"].items())
    return "\n".join(lines) + f"\n\nMemory of 1,000 cache entries: {memory}\n"
