"""Results of a benchmark run: table rows, the JSON file, the Markdown table and the charts."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from statistics import mean

from loadtest.load import Throughput
from loadtest.scenarios import Scenario

CHART_TARGET_RATIO = 0.5  # the target: /imp at half the bare Falcon pixel's throughput
#: Issue 8's p99 targets in the latency charts: 5 ms, 10 ms for the durable /bill.
CHART_TARGET_P99_MS = {"bill": 10.0, "bill-plain": 10.0}
PERCENTILES = (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("p999_ms", "p99.9"))


def throughput_row(scenario: Scenario, result: Throughput, accepted: int, refused: int) -> dict:
    """One line of the throughput table."""
    return {
        "name": scenario.name,
        "title": scenario.title,
        "expect": scenario.expect,
        "rps": round(result.rps, 1),
        "events_per_s": round(result.rps * scenario.events_per_request, 1),
        "p50_ms": result.p50_ms,
        "p90_ms": result.p90_ms,
        "p99_ms": result.p99_ms,
        "p999_ms": result.p999_ms,
        "requests": result.requests,
        "non_2xx_3xx": result.non_2xx_3xx,
        "errors": result.errors,
        "accepted": accepted,
        "refused": refused,
    }


def reference_row(scenario: Scenario, runs: list[Throughput]) -> dict:
    """A reference's line: the mean of its runs before and after the tracker's."""
    row = throughput_row(scenario, runs[0], 0, 0)
    row.update(
        rps=round(mean(r.rps for r in runs), 1),
        events_per_s=None,
        p50_ms=mean(r.p50_ms for r in runs),
        p90_ms=mean(r.p90_ms for r in runs),
        p99_ms=mean(r.p99_ms for r in runs),
        p999_ms=mean(r.p999_ms for r in runs),
        requests=sum(r.requests for r in runs),
        non_2xx_3xx=sum(r.non_2xx_3xx for r in runs),
        errors=sum(r.errors for r in runs),
        accepted=None,
        refused=None,
        runs_rps=[round(r.rps, 1) for r in runs],
    )
    return row


def add_ratios(rows: list[dict], references: list[dict]) -> None:
    """Add each row's throughput as a fraction of each reference's (``vs_nginx``...)."""
    for row in rows:
        for ref in references:
            row[f"vs_{ref['name']}"] = round(row["rps"] / ref["rps"], 4) if ref["rps"] else None


def machine() -> dict:
    """Describe the machine: CPU, cores, memory, kernel, Python, load at the end of the run."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def progress(row: dict) -> str:
    """One line printed as each throughput run ends."""
    return f"{row['name']:>10}: {row['rps']:>9.0f} req/s  p99 {row['p99_ms']:.1f} ms"


def progress_latency(row: dict) -> str:
    """One line printed as each latency run ends."""
    return (
        f"{row['name']:>10} @ {row['rate']} req/s: p50 {row['p50_ms']:.2f} ms, "
        f"p99 {row['p99_ms']:.2f} ms, p99.9 {row['p999_ms']:.2f} ms, errors {row['errors']}"
    )


def progress_flood(figures: dict) -> str:
    """The line printed when the flood run ends, and the one of the table."""
    alone, flooded, bad = figures["alone"], figures["flooded"], figures["bad"]
    return (
        f"Good impressions at {alone['sent_per_s']:,.0f} req/s (2 workers), p99 "
        f"{alone['p99_ms']:.2f} ms alone and {flooded['p99_ms']:.2f} ms (max "
        f"{flooded['max_ms']:.1f} ms) while bad requests arrived at "
        f"{bad['sent_per_s']:,.0f} req/s ({bad['answered_per_s']:,.0f} answered, "
        f"{bad['dropped']} dropped; answered {_statuses(bad['statuses'])})."
    )


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {status}" for status, count in sorted(counts.items()))


def progress_freshness(row: dict) -> str:
    """The line printed when the banker's freshness run ends."""
    return (
        f"{'freshness':>10} @ {row['rate']} notices/s: notice to ledger "
        f"p50 {row['p50_ms']:.1f} ms, "
        f"p99 {row['p99_ms']:.1f} ms, max {row['max_ms']:.1f} ms, "
        f"{row['visible']} of {row['notices']} visible"
    )


def _cpu(row: dict, server: str) -> str:
    value = row.get("cpu_us", {}).get(server)
    return "" if value is None else f"{value:,}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def markdown(results: dict) -> str:
    """Render the tables a person reads."""
    m, s = results["machine"], results["settings"]
    lines = [
        f"Benchmark of {results['started']} ({'smoke' if s['smoke'] == 'True' else 'full'} run, "
        f"{results['seconds']} s): {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"load average {m.get('load_average_start', '?')} at the start, "
        f"{m['load_average'][0]} at the end.",
        f"wrk: 1 thread, {s['connections']} connections, {s['duration']} s per run, "
        f"{s['workers']} worker(s) per server. vegeta: {s['latency_duration']} s per rate, "
        f"{s['latency_workers']} workers per server.",
        "",
        "| scenario | req/s | events/s | vs nginx | vs bare Falcon | p50 ms | p99 ms "
        "| p99.9 ms | accepted | refused | not 2xx/3xx | socket errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results["throughput"]:
        lines.append(
            f"| {r['title']} | {r['rps']:,.0f} | "
            f"{'' if r['events_per_s'] is None else format(r['events_per_s'], ',.0f')} | "
            f"{_ratio(r.get('vs_nginx'))} | {_ratio(r.get('vs_falcon'))} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['p999_ms']:.2f} | "
            f"{'' if r['accepted'] is None else format(r['accepted'], ',')} | "
            f"{'' if r['refused'] is None else format(r['refused'], ',')} | {r['non_2xx_3xx']:,} | "
            f"{r['errors']:,} |"
        )
    lines += [
        "",
        "| scenario | arrival rate | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms "
        "| max ms | errors | p99 / nginx p99 | p99 / bare Falcon p99 "
        "| CPU µs/req: tracker | Kafka | Redis |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    p99 = {(r["name"], r["rate"]): r["p99_ms"] for r in results["latency"]}
    for r in results["latency"]:
        ratios = [p99.get((ref, r["rate"])) for ref in ("nginx", "falcon")]
        shown = [
            "" if not x or r["name"] in ("nginx", "falcon") else f"{r['p99_ms'] / x:.1f}x"
            for x in ratios
        ]
        lines.append(
            f"| {r['name']} | {r['rate']:,} | {r['achieved_rps']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['max_ms']:.1f} | "
            f"{r['errors']:,} | {shown[0]} | {shown[1]} | {_cpu(r, 'tracker')} | "
            f"{_cpu(r, 'kafka')} | {_cpu(r, 'redis')} |"
        )
    rss = results["worker_rss_mib"]
    kafka = results["kafka"]
    lines += [
        "",
        "Tracker worker RSS (MiB) after the throughput runs: "
        + ", ".join(f"{x:.1f}" for x in rss.get("throughput", []))
        + "; after the latency runs: "
        + ", ".join(f"{x:.1f}" for x in rss.get("latency", []))
        + ".",
        f"Kafka: {kafka['accepted']:,} events accepted for Kafka, {kafka['arrived']:,} arrived"
        + (" (equal)." if kafka["accepted"] == kafka["arrived"] else " (MISMATCH)."),
    ]
    if results.get("flood"):
        lines += ["", "Flood: " + progress_flood(results["flood"])]
    lines += banker_lines(results)
    lines += [f"PROBLEM: {p}" for p in results["problems"]]
    return "\n".join(lines) + "\n"


def _times(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else ""


def banker_lines(results: dict) -> list[str]:
    """The banker's table: ``/bill`` with and without it, freshness, ledger, in-process cost."""
    figures = results.get("banker") or {}
    if not figures:
        return []
    rows = {r["name"]: r for r in results["throughput"]}
    both = [rows.get("bill"), rows.get("bill-plain")]
    lines = [
        "",
        "The banker on `/bill` (with it: the config under test; without: the same config,"
        " the banker dropped, generated by the benchmark):",
        "",
    ]
    if all(both):
        lines += [
            "| /bill | with the banker | banker dropped | with / without |",
            "|---|--:|--:|--:|",
            f"| req/s, closed loop | {both[0]['rps']:,.0f} | {both[1]['rps']:,.0f} | "
            f"{_times(both[0]['rps'], both[1]['rps'])} |",
            f"| p99 ms, closed loop | {both[0]['p99_ms']:.2f} | {both[1]['p99_ms']:.2f} | "
            f"{_times(both[0]['p99_ms'], both[1]['p99_ms'])} |",
        ]
        latency = {(r["name"], r["rate"]): r for r in results["latency"]}
        for (name, rate), row in sorted(latency.items(), key=lambda kv: kv[0][1]):
            plain = latency.get(("bill-plain", rate))
            if name == "bill" and plain:
                lines.append(
                    f"| p99 ms at {rate:,} req/s (achieved {row['achieved_rps']:,.0f} and "
                    f"{plain['achieved_rps']:,.0f}) | {row['p99_ms']:.2f} | "
                    f"{plain['p99_ms']:.2f} | "
                    f"{_times(row['p99_ms'], plain['p99_ms'])} |"
                )
        lines.append("")
    fresh = figures.get("freshness")
    if fresh:
        lines.append(
            f"Spend freshness, notice sent to spend visible in Redis: {fresh['notices']:,} notices "
            f"at {fresh['rate']:,}/s (achieved {fresh['achieved_rps']:,.0f}/s), each for its own "
            f"campaign: p50 {fresh['p50_ms']:.1f} ms, p99 {fresh['p99_ms']:.1f} ms, "
            f"max {fresh['max_ms']:.1f} ms; {fresh['visible']:,} visible."
        )
    ledger = figures["ledger"]
    lines.append(
        f"Ledger: {ledger['notices_accepted']:,} billing notices accepted for the banker, "
        f"{ledger['distinct_billable']:,} distinct billable in {ledger['campaigns']:,} campaigns"
        # Results from before line items were checked have no count of them.
        + (f" and {ledger['line_items']:,} line items" if "line_items" in ledger else "")
        + f", {ledger['spend_micros']:,} micros"
        + (
            " (the ledger holds exactly that)."
            if not ledger["mismatches"]
            else f" ({ledger['mismatches']} campaigns or line items differ in the ledger: "
            "MISMATCH)."
        )
    )
    cost = figures["collector"]
    lines.append(
        f"In-process: `collect()` p50 {cost['collect_p50_us']:.1f} µs, p99 "
        f"{cost['collect_p99_us']:.1f} µs, mean {cost['collect_mean_us']:.1f} µs per notice "
        f"({cost['notices']:,} notices); the Lua step {cost['lua_p50_ms']:.2f} ms per batch of "
        f"{cost['lua_batch']} (max {cost['lua_max_ms']:.2f} ms), "
        f"{cost['lua_us_per_notice']:.1f} µs per notice, of which "
        f"{cost['client_cpu_us_per_notice']:.1f} µs of the flushing thread's CPU."
    )
    return lines


def charts(results: dict, out: Path) -> list[Path]:
    """Draw throughput against the references, and latency percentiles against rate."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = results["throughput"]
    names = [r["title"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 1.5), sharey=True)
    colours = ["#888888" if r.get("accepted") is None else "#1f77b4" for r in rows]
    left.barh(names, [r["rps"] for r in rows], color=colours)
    left.set_xscale("log")
    left.set_xlabel("requests per second (log scale)")
    left.set_title("Throughput, wrk closed loop")
    right.barh(names, [100 * (r.get("vs_falcon") or 0) for r in rows], color=colours)
    right.axvline(100 * CHART_TARGET_RATIO, color="#d62728", linestyle="--", label="target 50%")
    right.set_xlabel("% of the bare Falcon pixel's throughput")
    right.set_title("Relative to the bare Falcon pixel (same run)")
    right.legend(loc="lower right")
    left.invert_yaxis()
    fig.tight_layout()
    throughput = out / "throughput.png"
    fig.savefig(throughput, dpi=100)
    plt.close(fig)

    by_name: dict[str, list[dict]] = {}
    for r in results["latency"]:
        by_name.setdefault(r["name"], []).append(r)
    columns = min(3, max(1, len(by_name)))
    lines = -(-max(1, len(by_name)) // columns)
    fig, grid = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.4 * lines), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[len(by_name) :]:
        ax.set_visible(False)
    for ax, (name, points) in zip(axes, by_name.items(), strict=False):
        points = sorted(points, key=lambda p: p["rate"])
        rates = [p["rate"] for p in points]
        for key, label in PERCENTILES:
            ax.plot(rates, [p[key] for p in points], marker="o", label=label)
        target = CHART_TARGET_P99_MS.get(name, 5.0)
        ax.axhline(target, color="#d62728", linestyle="--", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("arrival rate (req/s)")
        ax.set_ylabel("latency (ms, log scale)")
    axes[0].legend(fontsize="small")
    fig.suptitle("Latency at constant arrival rates (vegeta, open loop); dashed: p99 target")
    fig.tight_layout()
    latency = out / "latency.png"
    fig.savefig(latency, dpi=100)
    plt.close(fig)
    return [throughput, latency]


def write(results: dict, out: Path) -> dict[str, Path]:
    """Write ``results.json``, ``results.md`` and the charts into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "results.json"
    data.write_text(json.dumps(results, indent=2) + "\n")
    table = out / "results.md"
    table.write_text(markdown(results))
    throughput, latency = charts(results, out)
    return {"json": data, "markdown": table, "throughput": throughput, "latency": latency}


def main(argv: list[str]) -> int:
    """Re-render the table and charts of a ``results.json`` beside it (after a format change)."""
    if len(argv) != 1:
        print("usage: python -m loadtest.report RESULTS.json", file=sys.stderr)
        return 2
    source = Path(argv[0])
    results = json.loads(source.read_text())
    source.with_name("results.md").write_text(markdown(results))
    charts(results, source.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
