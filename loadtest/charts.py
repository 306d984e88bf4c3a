"""The benchmark's charts (matplotlib): throughput against the references, latency per window."""

from __future__ import annotations

from pathlib import Path

CHART_TARGET_RATIO = 0.5  # the target: /imp at half the bare Falcon pixel's throughput
#: Issue 21's targets: every window's p99 at most 5 ms (10 ms for the durable /bill),
#: and no request over 50 ms.
CHART_TARGET_P99_MS = {"bill": 10.0, "bill-plain": 10.0}
CHART_TARGET_MAX_MS = 50.0


def windows(row: dict) -> list[dict]:
    """A latency row's windows in time order; a row from before windows is one window."""
    return row.get("windows") or [{"p99_ms": row["p99_ms"], "max_ms": row["max_ms"]}]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def draw(results: dict, out: Path) -> list[Path]:
    """Draw ``throughput.png`` and ``latency.png`` into ``out``; return their paths."""
    plt = _pyplot()
    fig = latency_figure(results)
    latency = out / "latency.png"
    fig.savefig(latency, dpi=100)
    plt.close(fig)
    return [_throughput(plt, results, out), latency]


def _throughput(plt, results: dict, out: Path) -> Path:
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
    path = out / "throughput.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def latency_figure(results: dict):
    """The latency chart: a panel per scenario, a slot per rate holding its windows in order.

    The rates are categories, not a numeric axis: a panel with a single rate
    would otherwise get matplotlib's offset notation ("-1.0 ... +1e3"), and
    the windows of one rate are spread across its slot in the order they ran,
    so a stall in one window stands out from its neighbours.
    """
    plt = _pyplot()
    by_name: dict[str, list[dict]] = {}
    for r in results["latency"]:
        by_name.setdefault(r["name"], []).append(r)
    columns = min(3, max(1, len(by_name)))
    lines = -(-max(1, len(by_name)) // columns)
    fig, grid = plt.subplots(lines, columns, figsize=(4.4 * columns, 3.6 * lines), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[len(by_name) :]:
        ax.set_visible(False)
    for ax, (name, points) in zip(axes, by_name.items(), strict=False):
        points = sorted(points, key=lambda p: p["rate"])
        for slot, point in enumerate(points):
            shown = windows(point)
            xs = [
                slot + (i - (len(shown) - 1) / 2) * 0.6 / max(1, len(shown))
                for i in range(len(shown))
            ]
            first = slot == 0
            ax.plot(
                xs,
                [w["max_ms"] for w in shown],
                "v",
                color="#d62728",
                mfc="none",
                label="max, each window" if first else None,
            )
            ax.plot(
                xs,
                [w["p99_ms"] for w in shown],
                "o-",
                color="#1f77b4",
                linewidth=0.8,
                label="p99, each window" if first else None,
            )
            ax.plot(
                [slot - 0.35, slot + 0.35],
                [point["p50_ms"]] * 2,
                color="#2ca02c",
                label="p50, whole run" if first else None,
            )
        ax.axhline(
            CHART_TARGET_P99_MS.get(name, 5.0), color="#1f77b4", linestyle="--", linewidth=0.8
        )
        ax.axhline(CHART_TARGET_MAX_MS, color="#d62728", linestyle=":", linewidth=0.8)
        ax.set_xticks(range(len(points)), [f"{p['rate']:,}" for p in points])
        ax.set_xlim(-0.5, len(points) - 0.5)
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("arrival rate (req/s)")
        ax.set_ylabel("latency (ms, log scale)")
    axes[0].legend(fontsize="small")
    fig.suptitle(
        "Latency at constant arrival rates (vegeta, open loop), every window in the order run;\n"
        "dashed: p99 target, dotted: max target"
    )
    fig.tight_layout()
    return fig
