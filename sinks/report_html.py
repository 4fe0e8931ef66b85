"""``touchpoint report --html FILE``: the report as one self-contained HTML page with inline SVG charts.

No JavaScript, no web fonts, no CDN (the page must open offline and from an e-mail attachment): the charts are
plain SVG written here — horizontal bars for the funnel and campaigns, small line charts for the daily KPIs.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from touchpoint.sinks.report import format_minor as _minor
from touchpoint.sinks.report import format_money as _money
from touchpoint.sinks.report import format_number as _fmt
from touchpoint.sinks.report import format_rate as _pct
from touchpoint.sinks.report_quality import quality_html

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
.sub{color:#6b7385;margin-bottom:16px}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.card{border:1px solid #e3e6ec;border-radius:8px;padding:10px 12px}.card .k{color:#6b7385;font-size:12px}.card .v{font-size:20px;font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:14px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef0f4}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}svg text{font:11px system-ui,sans-serif;fill:#39404f}
"""
_COLORS = ("#3366cc", "#dc7633", "#2e9e6a", "#8e44ad", "#c0392b")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def bar_chart(items: Sequence[tuple[str, float, str]], title: str, width: int = 520) -> str:
    """Horizontal bars: (label, value, value text). Values are scaled to the largest."""
    row_h, label_w = 26, 170
    height = 30 + row_h * max(len(items), 1)
    top = max((v for _, v, _ in items), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{_e(title)}</title>',
             f'<text x="0" y="14" font-weight="600">{_e(title)}</text>']
    span = width - label_w - 90
    for i, (label, value, text) in enumerate(items):
        y = 26 + i * row_h
        w = max(1.0, span * value / top) if value else 0
        parts.append(f'<text x="0" y="{y + 13}">{_e(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{_COLORS[0]}"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 13}">{_e(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: Sequence[tuple[str, float | None]], title: str, suffix: str = "", color: str = _COLORS[0],
               width: int = 330, height: int = 170) -> str:
    """A small line chart of one daily series; gaps (None) break the line."""
    left, right, top, bottom = 44, 10, 26, 28
    values = [v for _, v in points if v is not None]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{_e(title)}</title>',
             f'<text x="0" y="14" font-weight="600">{_e(title)}</text>']
    if not values:
        parts.append(f'<text x="{left}" y="{height / 2:.0f}">no data</text></svg>')
        return "".join(parts)
    lo, hi = min(values), max(values)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(points)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return x, top + plot_h * (1 - (v - lo) / (hi - lo))

    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e3e6ec"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_e(_fmt(lo + (hi - lo) * frac, 1))}</text>')
    segment: list[str] = []
    segments: list[list[str]] = [segment]
    for i, (_, v) in enumerate(points):
        if v is None:
            segment = []
            segments.append(segment)
            continue
        x, y = xy(i, v)
        segment.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{_e(points[i][0])}: '
                     f'{_e(_fmt(v, 1, suffix))}</title></circle>')
    for seg in segments:
        if len(seg) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(seg)}"/>')
    for i in sorted({0, n - 1}):
        x, _ = xy(i, lo)
        # first label grows right, last grows left: both stay inside the chart
        anchor = "middle" if n == 1 else "start" if i == 0 else "end"
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="{anchor}">{_e(points[i][0])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool]) -> str:
    head = "".join(f'<th class="{"n" if n else ""}">{_e(h)}</th>' for h, n in zip(headers, numeric))
    body = "".join("<tr>" + "".join(f'<td class="{"n" if n else ""}">{_e(c)}</td>' for c, n in zip(r, numeric)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict[str, Any]) -> str:
    """The whole page for ``build_report``'s result."""
    t = report["totals"]
    cards = [("Touchpoints", _fmt(t["touchpoints"])), ("Customers", _fmt(t["customers"])), ("NPS", _fmt(t["nps"])),
             ("CSAT", _fmt(t["csat_pct"], 1, "%")), ("CES (avg)", _fmt(t["ces_avg"], 2)),
             ("On-time delivery", _fmt(t["on_time_pct"], 1, "%")), ("Checkout conversion", _pct(t["conversion_rate"])),
             ("Checkout abandonment", _pct(t["abandonment_rate"])),
             ("Resolution avg", _fmt(t["avg_resolution_seconds"], 0, " s")),
             ("Resolution p90", _fmt(t["p90_resolution_seconds"], 0, " s")), ("Email open rate", _pct(t["open_rate"])),
             ("Email CTR", _pct(t["ctr"])), ("Revenue", _money(t["revenue_minor"])),
             ("Identity merges", _fmt(t["identity_merges"]))]
    funnel = bar_chart([(s["label"], float(s["customers"]), f'{s["customers"]:,} ({_fmt(s["pct_of_first"], 1, "%")})')
                        for s in report["funnel"]], "Funnel: ad click → surveyed (people)")
    if "journey_funnel" in report:  # the funnel of the steps the data holds replaces the fixed one
        funnel = _journey_funnel_chart(report)
    days = report["daily"]
    series = [("NPS", "nps", ""), ("CSAT %", "csat_pct", "%"), ("CES (avg)", "ces_avg", ""),
              ("On-time delivery %", "on_time_pct", "%"), ("Checkout conversion %", "conversion_rate", "%"),
              ("Resolution p90 (s)", "p90_resolution_seconds", " s")]
    lines = []
    for i, (title, key, suffix) in enumerate(series):
        scale = 100.0 if key == "conversion_rate" else 1.0
        points = [(str(d["day"]), None if d[key] is None else float(d[key]) * scale) for d in days]
        lines.append(line_chart(points, title, suffix, _COLORS[i % len(_COLORS)]))
    campaigns = bar_chart([(f'{c["campaign_id"]} ({c["currency"]})', (c["conversion_rate"] or 0.0) * 100,
                            _pct(c["conversion_rate"])) for c in report["campaigns"]],
                          "Campaign conversion (last-touch attributed conversions / clicks)")
    campaign_rows = [(c["campaign_id"], c["currency"], c["clicks"], _minor(c["spend_minor"]),
                      c["attributed_conversions"], _minor(c["attributed_revenue_minor"]), _pct(c["conversion_rate"]),
                      _minor(c["cost_per_conversion_minor"]))
                     for c in report["campaigns"]]
    path_rows = [(p["path"] or "(empty)", p["journeys"], p["converted_journeys"], _fmt(p["conversion_pct"], 1, "%"))
                 for p in report["top_paths"]]
    email_rows = [(e["campaign_id"], e["sent"], e["opened"], e["clicked"], _pct(e["open_rate"]), _pct(e["ctr"]))
                  for e in report["email_campaigns"]]
    card_html = "".join(f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div></div>' for k, v in cards)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>touchpoint report — {_e(report["database"])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body><h1>Customer experience</h1>
<div class="sub">database <b>{_e(report["database"])}</b> · generated {_e(report["generated_at"])} ·
ratios are ratios of sums, never averages of averages</div>
<div class="cards">{card_html}</div>
<h2>Funnel</h2>{funnel}
<h2>Over time (per day, from metric components)</h2><div class="charts">{"".join(lines)}</div>
<h2>Campaigns (last-touch attribution, from the worker)</h2>{campaigns}
{_table(("campaign", "currency", "clicks", "spend", "conversions", "revenue", "conversion", "cost / conversion"),
        campaign_rows, (False, False, True, True, True, True, True, True))}
<h2>Top journey paths</h2>{_table(("path", "journeys", "converted", "conversion"), path_rows, (False, True, True, True))}
<h2>Email</h2>{_table(("campaign", "sent", "opened", "clicked", "open rate", "CTR"), email_rows,
                      (False, True, True, True, True, True))}
{_customer_sections(report)}
{_journey_html(report)}
{quality_html(report)}
</body></html>
"""


def _customer_sections(report: dict[str, Any]) -> str:
    from touchpoint.sinks.report_customers import render_customers_html

    return render_customers_html(report["customers"]) if "customers" in report else ""
def _journey_funnel_chart(report: dict[str, Any]) -> str:
    from touchpoint.sinks.report_journeys import funnel_chart

    return funnel_chart(report)


def _journey_html(report: dict[str, Any]) -> str:
    from touchpoint.sinks.report_journeys import render_html as journeys_html

    return journeys_html(report)


def write_html(report: dict[str, Any], path: Path) -> Path:
    """Write the page to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
