"""Results of a benchmark run: table rows, the JSON file, the Markdown table and the charts."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from statistics import mean

from loadtest import charts, floods
from loadtest.load import Throughput
from loadtest.scenarios import Scenario


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


def judge(
    scenario: Scenario, result: Throughput, before: dict, after: dict, kafka_paths: set[str]
) -> tuple[dict, str | None]:
    """Build a scenario's row and check its outcome against what it expects.

    Returns:
        The row, and the problem when the tracker's counters disagree with
        what the scenario expects (else ``None``).
    """
    delta = {k: v - before.get(k, 0) for k, v in after.items()}
    accepted = int(sum(delta.get((p, "accepted"), 0) for p in kafka_paths))
    rejected = int(sum(v for (_, outcome), v in delta.items() if outcome == "rejected"))
    dropped = int(sum(v for (_, outcome), v in delta.items() if outcome == "dropped"))
    row = throughput_row(scenario, result, accepted, rejected + dropped)
    # Socket errors and timeouts are shown, not judged: under load they are timing.
    failed = scenario.expect == "accepted" and result.non_2xx_3xx
    wrong = {
        "accepted": rejected or dropped or not accepted,
        "rejected": accepted or not result.non_2xx_3xx,
        "mixed": not accepted or not rejected,
    }[scenario.expect]
    if not (failed or wrong):
        return row, None
    return row, (
        f"scenario {scenario.name} expects {scenario.expect} requests, but: "
        f"{accepted} events accepted, {rejected} rejected, {dropped} dropped, "
        f"{result.non_2xx_3xx} answers not 2xx/3xx, {result.errors} socket errors"
    )


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
        f"p99 {row['p99_ms']:.2f} ms, p99.9 {row['p999_ms']:.2f} ms, errors {row['errors']}; "
        f"windows p99/max {_windows(row)}"
    )


def _worst(row: dict) -> float:
    return max(w["p99_ms"] for w in charts.windows(row))


def _windows(row: dict) -> str:
    """Each window's p99 / max in ms, in the order they ran: ``1.1/4 1.0/7``."""
    return " ".join(f"{w['p99_ms']:.1f}/{w['max_ms']:.0f}" for w in charts.windows(row))


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
        f"{s['workers']} worker(s) per server. vegeta: {s.get('windows', 1)} windows of "
        f"{s['latency_duration']} s per rate, "
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
        f"Latency: each rate is {s.get('windows', 1)} windows of {s['latency_duration']} s; "
        "p99 and max are the worst window's, then every window's p99/max in the order run.",
        "",
        "| scenario | arrival rate | achieved req/s | p50 ms | p90 ms | worst p99 ms | p99.9 ms "
        "| max ms | windows p99/max ms | errors | p99 / nginx p99 | p99 / bare Falcon p99 "
        "| CPU µs/req: tracker | Kafka | Redis |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    p99 = {(r["name"], r["rate"]): _worst(r) for r in results["latency"]}
    for r in results["latency"]:
        ratios = [p99.get((ref, r["rate"])) for ref in ("nginx", "falcon")]
        shown = [
            "" if not x or r["name"] in ("nginx", "falcon") else f"{_worst(r) / x:.1f}x"
            for x in ratios
        ]
        lines.append(
            f"| {r['name']} | {r['rate']:,} | {r['achieved_rps']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p90_ms']:.2f} | {_worst(r):.2f} | {r['p999_ms']:.2f} | {r['max_ms']:.1f} | "
            f"{_windows(r)} | {r['errors']:,} | {shown[0]} | {shown[1]} | {_cpu(r, 'tracker')} | "
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
        lines += ["", *floods.lines(results["flood"])]
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


def write(results: dict, out: Path) -> dict[str, Path]:
    """Write ``results.json``, ``results.md`` and the charts into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "results.json"
    data.write_text(json.dumps(results, indent=2) + "\n")
    table = out / "results.md"
    table.write_text(markdown(results))
    throughput, latency = charts.draw(results, out)
    return {"json": data, "markdown": table, "throughput": throughput, "latency": latency}


def main(argv: list[str]) -> int:
    """Re-render the table and charts of a ``results.json`` beside it (after a format change)."""
    if len(argv) != 1:
        print("usage: python -m loadtest.report RESULTS.json", file=sys.stderr)
        return 2
    source = Path(argv[0])
    results = json.loads(source.read_text())
    source.with_name("results.md").write_text(markdown(results))
    charts.draw(results, source.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
