"""The HTML report: the campaign table and charts of impressions, clicks and spend.

Self-contained: inline CSS and SVG drawn here, no script, no font, no request to
any network; it opens from a file as well as from the loader's ``/report.html``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from html import escape
from typing import Any

from . import query

WIDTH, HEIGHT = 560, 180
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 12, 28
CHARTS = (
    ("impressions", "Impressions", "#2563eb"),
    ("clicks", "Clicks", "#16a34a"),
    ("spend_micros", "Spend (currency units)", "#d97706"),
)
STYLE = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#111}
h1{font-size:20px;margin:0 0 4px}p.meta{color:#555;margin:0 0 16px}
table{border-collapse:collapse;margin:16px 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f3f4f6}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;border:1px solid #e5e7eb;padding:8px}figcaption{font-weight:600}
svg text{font:11px system-ui,sans-serif;fill:#444}
"""


def series_key(request: query.ReportRequest) -> str:
    """Hourly points for a range of up to three days, else daily."""
    return "hour" if request.end - request.start <= timedelta(days=3) else "day"


def render(store: Any, request: query.ReportRequest) -> str:
    """Run the report and its time series on ``store``; return the page."""
    rows = query.run(store, request)
    step = series_key(request)
    series = fill(request, step, query.run(store, replace(request, by=(step,))))
    return document(request, rows, series, step)


def fill(request: query.ReportRequest, step: str, rows: list[dict[str, Any]]) -> list[dict]:
    """Add the steps of the range that have no events, as zeros, so the axis is time."""
    seen = {r[step]: r for r in rows}
    delta = timedelta(hours=1) if step == "hour" else timedelta(days=1)
    fmt = "%Y-%m-%dT%H:00:00Z" if step == "hour" else "%Y-%m-%d"
    moment = request.start.replace(minute=0, second=0, microsecond=0)
    if step == "day":
        moment = moment.replace(hour=0)
    out = []
    while moment < request.end and len(out) < 400:
        key = moment.strftime(fmt)
        out.append(seen.pop(key, None) or {step: key, **dict.fromkeys(query.METRICS, 0)})
        moment += delta
    return sorted(out + list(seen.values()), key=lambda r: r[step])


def document(
    request: query.ReportRequest,
    rows: list[dict[str, Any]],
    series: list[dict[str, Any]],
    step: str,
) -> str:
    """Build the page from report rows and a time series (``step``: ``day`` or ``hour``)."""
    scope = f"campaign {escape(request.campaign)}" if request.campaign else "all campaigns"
    span = f"{request.start:%Y-%m-%d %H:%M} to {request.end:%Y-%m-%d %H:%M} UTC"
    charts = "".join(_chart(series, step, *chart) for chart in CHARTS)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>Tracker report</title><style>{STYLE}</style></head><body>"
        f"<h1>Campaign report</h1><p class=meta>{scope}, {span}; distinct event ids, "
        f"bots excluded except in bot_impressions</p>"
        f"<div class=charts>{charts}</div>{_table(rows, request.by)}</body></html>\n"
    )


def _table(rows: list[dict[str, Any]], by: tuple[str, ...]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in (*by, *query.METRICS))
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell(r[c]))}</td>" for c in (*by, *query.METRICS)) + "</tr>"
        for r in rows
    )
    if not rows:
        body = f"<tr><td colspan={len(by) + len(query.METRICS)}>no events in this range</td></tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cell(value: Any) -> str:
    """Format one value the way the table output does."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value) or "(none)"


def _chart(series: list[dict[str, Any]], step: str, metric: str, title: str, color: str) -> str:
    values = [r[metric] / (1e6 if metric == "spend_micros" else 1) for r in series]
    labels = [str(r[step])[5:16].replace("T", " ") for r in series]
    top = max(values, default=0) or 1
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + inner_h
    n = max(len(values), 1)
    slot = inner_w / n
    bars = []
    for i, value in enumerate(values):
        h = inner_h * value / top
        bars.append(
            f"<rect x='{LEFT + i * slot + slot * 0.15:.1f}' y='{base - h:.1f}' "
            f"width='{slot * 0.7:.1f}' height='{h:.1f}' fill='{color}'>"
            f"<title>{escape(labels[i])}: {_number(value, metric)}</title></rect>"
        )
    ticks = [(0, labels[0]), (n - 1, labels[-1])] if labels else []
    axis = "".join(
        f"<text x='{LEFT + i * slot + slot / 2:.1f}' y='{HEIGHT - 8}' "
        f"text-anchor='middle'>{escape(t)}</text>"
        for i, t in ticks
    )
    return (
        f"<figure><figcaption>{escape(title)} per {step}</figcaption>"
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
        f"role='img' aria-label='{escape(title)} per {step}'>"
        f"<line x1='{LEFT}' y1='{base}' x2='{WIDTH - RIGHT}' y2='{base}' stroke='#999'/>"
        f"<text x='{LEFT - 6}' y='{TOP + 4}' text-anchor='end'>{_number(top, metric)}</text>"
        f"<text x='{LEFT - 6}' y='{base}' text-anchor='end'>0</text>"
        f"{''.join(bars)}{axis}</svg></figure>"
    )


def _number(value: float, metric: str) -> str:
    return f"{value:,.2f}" if metric == "spend_micros" else f"{value:,.0f}"
