"""The customer sections of the report (churn trend, lifecycle, retention cohorts, sales cycle, at risk):
one builder of plain JSON-ready data and its two renderers (rich for the terminal, HTML with inline SVG).

``build_customer_report`` runs the queries of ``touchpoint.sinks.customers`` (definitions there and in
sinks/README.md); ``report.build_report`` puts its result under the key ``customers``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from touchpoint.sinks import customer_periods as cp
from touchpoint.sinks import customers as cq
from touchpoint.sinks.report import NO_DATA, format_money, format_number, format_rate

PERIODS_SHOWN = 12
COHORT_OFFSETS_SHOWN = 6


def format_duration(ms: float | int | None) -> str:
    """A duration for people: ``1 d 9 h``, ``3 h 12 min``, ``4 min 5 s``, ``12 s`` (two units at most, rounded)."""
    if ms is None:
        return NO_DATA
    seconds = int(round(float(ms) / 1000))
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        hours = int(round((seconds - days * 86_400) / 3_600))
        if hours == 24:
            days, hours = days + 1, 0
        return f"{sign}{days:,} d {hours} h" if hours else f"{sign}{days:,} d"
    if hours:
        minutes = int(round((seconds - hours * 3_600) / 60))
        if minutes == 60:
            hours, minutes = hours + 1, 0
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    if minutes:
        return f"{sign}{minutes} min {secs} s" if secs else f"{sign}{minutes} min"
    return f"{sign}{secs} s"


def build_customer_report(client: Any, database: str, params: cq.CustomerParams | None = None,
                          *, at_risk_top: int = 10) -> dict[str, Any]:
    """Keys: ``params`` (period, inactivity_days, activity, quiet_share, as_of_ms), ``summary``
    (``customers.customer_summary``), ``churn`` and ``lifecycle`` (the last 12 periods), ``cohorts`` (by first
    purchase, the last 12 cohorts), ``sales_cycle`` (customer and journey level, distribution, by first-touch
    channel), ``sales_cycle_by_campaign`` (breakdown rows), ``at_risk`` (top ``at_risk_top`` by revenue),
    ``at_risk_total``."""
    p = params or cq.CustomerParams()
    as_of = cq.resolve_as_of(client, database, p)
    p = cq.CustomerParams(period=p.period, inactivity_days=p.inactivity_days, activity=p.activity,
                          quiet_share=p.quiet_share, as_of_ms=as_of)
    cohorts = cp.cohorts(client, database, p)
    cohorts["cohorts"] = cohorts["cohorts"][-PERIODS_SHOWN:]
    risk = cq.at_risk(client, database, p)
    return {
        "params": {"period": p.period, "inactivity_days": p.inactivity_days, "activity": p.activity,
                   "quiet_share": p.quiet_share, "as_of_ms": as_of},
        "summary": cq.customer_summary(client, database),
        "churn": cp.churn(client, database, p)[-PERIODS_SHOWN:],
        "lifecycle": cp.lifecycle(client, database, p)[-PERIODS_SHOWN:],
        "cohorts": cohorts,
        "sales_cycle": cq.sales_cycle(client, database, by="channel"),
        "sales_cycle_by_campaign": cq.sales_cycle(client, database, by="campaign")["breakdown"],
        "at_risk": risk[:at_risk_top],
        "at_risk_total": len(risk),
    }


# ---- terminal (rich) -----------------------------------------------------------------------------------

def render_customers(section: dict[str, Any], console: Any) -> None:
    """Print the customer sections with rich tables."""
    from rich.table import Table

    prm = section["params"]
    s = section["summary"]
    console.rule(f"[bold]customers[/bold] — churn after {format_number(prm['inactivity_days'], 0)} days without "
                 f"{'a purchase' if prm['activity'] == 'purchase' else 'activity'}")
    console.print(f"customers {s['customers']:,} (identified {s['identified']:,}) · buyers {s['buyers']:,} · "
                  f"repeat-purchase rate {format_rate(s['repeat_purchase_rate'])} · unsubscribed {s['unsubscribed']:,}")
    churn = Table("period", "active at start", "churned", "churn rate", "new", "unsubscribed",
                  title=f"churn per {prm['period']} (churned / active at start; new customers excluded)", title_justify="left")
    for r in section["churn"]:
        churn.add_row(r["period_start"] + ("" if r["complete"] else " *"), f"{r['active_at_start']:,}", f"{r['churned']:,}",
                      format_rate(r["churn_rate"]), f"{r['new_customers']:,}", f"{r['unsubscribed']:,}")
    console.print(churn)
    life = Table("period", "new", "returning", "resurrecting", "dormant", "", title="lifecycle", title_justify="left")
    top = max((r["active"] for r in section["lifecycle"]), default=0) or 1
    for r in section["lifecycle"]:
        bar = "".join(f"[{c}]" + "█" * round(20 * r[k] / top) + f"[/{c}]"
                      for k, c in (("new", "green"), ("returning", "blue"), ("resurrecting", "yellow")))
        life.add_row(r["period_start"], str(r["new"]), str(r["returning"]), str(r["resurrecting"]), f"-{r['dormant']}" if r["dormant"] else "0", bar)
    console.print(life)
    c = section["cohorts"]
    offsets = range(COHORT_OFFSETS_SHOWN)
    cohort = Table("cohort", "customers", *[f"+{k}" for k in offsets], "repeat",
                   title=f"retention by first-purchase {c['period']} (\"on\": bought again in that {c['period']})",
                   title_justify="left")
    for x in c["cohorts"]:
        cells = [format_rate(x["retention"][k]["on_rate"]) if k < len(x["retention"]) else "" for k in offsets]
        cohort.add_row(x["cohort"], f"{x['customers']:,}", *cells, format_rate(x["repeat_purchase_rate"]))
    console.print(cohort)
    sc = section["sales_cycle"]
    cycle = Table("sales cycle", "customers / journeys", "average", "median", "p90", title="sales-cycle length", title_justify="left")
    for label, st in (("customer: first touch → first purchase", sc["customer_level"]),
                      ("journey: journey's first touch → conversion", sc["journey_level"])):
        cycle.add_row(label, f"{st['customers']:,}", format_duration(st["avg_ms"]), format_duration(st["median_ms"]),
                      format_duration(st["p90_ms"]))
    for b in sc.get("breakdown", []):
        cycle.add_row(f"  first-touch channel {b['value'] or '(none)'}", f"{b['customers']:,}", format_duration(b["avg_ms"]),
                      format_duration(b["median_ms"]), format_duration(b["p90_ms"]))
    console.print(cycle)
    risk = Table("customer", "reason", "since", "quiet", "orders", "revenue",
                 title=f"at risk ({section['at_risk_total']:,}; top by revenue)", title_justify="left")
    for r in section["at_risk"]:
        risk.add_row(r["customer_id"], r["reason"], r["reason_at"][:10], format_duration(r["quiet_days"] * 86_400_000),
                     str(r["orders"]), format_money(r["revenue_minor"]))
    console.print(risk)


# ---- HTML (inline SVG, no script) ------------------------------------------------------------------------

_STATUS_COLORS = {"new": "#2e9e6a", "returning": "#3366cc", "resurrecting": "#dc7633", "dormant": "#9aa3b5"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def lifecycle_chart(rows: Sequence[dict[str, Any]], title: str, width: int = 640, height: int = 260) -> str:
    """Stacked bars per period: new, returning, resurrecting above the axis; dormant below it (PostHog's view)."""
    left, right, top, bottom = 48, 12, 44, 44
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{_e(title)}</title>',
             f'<text x="0" y="14" font-weight="600">{_e(title)}</text>']
    x = 0.0
    for status, color in _STATUS_COLORS.items():
        parts.append(f'<rect x="{x:.0f}" y="22" width="10" height="10" fill="{color}"/><text x="{x + 14:.0f}" y="31">{status}</text>')
        x += 24 + 7 * len(status)
    if not rows:
        parts.append(f'<text x="{left}" y="{height / 2:.0f}">no data</text></svg>')
        return "".join(parts)
    up = max(r["active"] for r in rows) or 1
    down = max(r["dormant"] for r in rows)
    plot_h = height - top - bottom
    scale = plot_h / (up + down) if up + down else 1.0
    axis = top + up * scale
    slot = (width - left - right) / len(rows)
    bar_w = max(2.0, slot * 0.7)
    parts.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{up:,}</text>'
                 f'<text x="{left - 4}" y="{axis + 4:.1f}" text-anchor="end">0</text>'
                 f'<line x1="{left}" y1="{axis:.1f}" x2="{width - right}" y2="{axis:.1f}" stroke="#39404f"/>')
    if down:
        parts.append(f'<text x="{left - 4}" y="{top + plot_h:.1f}" text-anchor="end">-{down:,}</text>')
    label_every = max(1, round(len(rows) / 6))
    for i, r in enumerate(rows):
        bx = left + i * slot + (slot - bar_w) / 2
        y = axis
        for status in ("new", "returning", "resurrecting"):
            h = r[status] * scale
            if h:
                y -= h
                parts.append(f'<rect x="{bx:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{_STATUS_COLORS[status]}">'
                             f'<title>{_e(r["period_start"])} {status}: {r[status]:,}</title></rect>')
        if r["dormant"]:
            parts.append(f'<rect x="{bx:.1f}" y="{axis:.1f}" width="{bar_w:.1f}" height="{r["dormant"] * scale:.1f}" '
                         f'fill="{_STATUS_COLORS["dormant"]}"><title>{_e(r["period_start"])} dormant: {r["dormant"]:,}</title></rect>')
        last = len(rows) - 1
        if i == last or (i % label_every == 0 and last - i >= label_every):  # never crowd the last label
            parts.append(f'<text x="{bx + bar_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{_e(r["period_start"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def cohort_heatmap(cohorts: dict[str, Any]) -> str:
    """The retention triangle as a table whose cells are shaded by their "on" rate."""
    offsets = min(COHORT_OFFSETS_SHOWN * 2, max((len(x["retention"]) for x in cohorts["cohorts"]), default=0))
    head = "".join(f'<th class="n">+{k}</th>' for k in range(offsets))
    body = []
    for x in cohorts["cohorts"]:
        cells = []
        for k in range(offsets):
            if k >= len(x["retention"]):
                cells.append("<td></td>")
                continue
            rate = x["retention"][k]["on_rate"] or 0.0
            shade = f"rgba(51,102,204,{0.08 + 0.85 * rate:.2f})"
            ink = "#fff" if rate > 0.5 else "#1d2330"
            cells.append(f'<td class="n heat" style="background:{shade};color:{ink}" '
                         f'title="{x["retention"][k]["on"]:,} of {x["customers"]:,}">{_e(format_rate(x["retention"][k]["on_rate"]))}</td>')
        body.append(f'<tr><td>{_e(x["cohort"])}</td><td class="n">{x["customers"]:,}</td>{"".join(cells)}'
                    f'<td class="n">{_e(format_rate(x["repeat_purchase_rate"]))}</td></tr>')
    return (f'<table class="cohorts"><thead><tr><th>cohort</th><th class="n">customers</th>{head}'
            f'<th class="n">repeat</th></tr></thead><tbody>{"".join(body)}</tbody></table>')


def render_customers_html(section: dict[str, Any]) -> str:
    """The customer sections as HTML (each under an ``<h2 id="customers-...">``)."""
    from touchpoint.sinks.report_html import _table, bar_chart, line_chart

    prm = section["params"]
    s = section["summary"]
    churn_points = [(r["period_start"], None if r["churn_rate"] is None else r["churn_rate"] * 100) for r in section["churn"]]
    churn_rows = [(r["period_start"] + ("" if r["complete"] else " (so far)"), f'{r["active_at_start"]:,}',
                   f'{r["churned"]:,}', format_rate(r["churn_rate"]), f'{r["new_customers"]:,}', f'{r["unsubscribed"]:,}')
                  for r in section["churn"]]
    sc = section["sales_cycle"]
    dist = bar_chart([(b["bucket"], float(b["customers"]), f'{b["customers"]:,}') for b in sc["distribution"]],
                     "Customers by sales-cycle length (first touch → first purchase)")
    cycle_rows = [(label, f'{st["customers"]:,}', format_duration(st["avg_ms"]), format_duration(st["median_ms"]),
                   format_duration(st["p90_ms"]))
                  for label, st in (("customer level: first touch → first purchase", sc["customer_level"]),
                                    ("journey level: journey's first touch → conversion", sc["journey_level"]))]
    cycle_rows += [(f"first-touch channel: {b['value'] or '(none)'}", b["customers"], format_duration(b["avg_ms"]),
                    format_duration(b["median_ms"]), format_duration(b["p90_ms"])) for b in sc.get("breakdown", [])]
    cycle_rows += [(f"first-touch campaign: {b['value'] or '(none)'}", b["customers"], format_duration(b["avg_ms"]),
                    format_duration(b["median_ms"]), format_duration(b["p90_ms"])) for b in section["sales_cycle_by_campaign"][:10]]
    risk_rows = [(r["customer_id"], r["reason"], r["reason_at"][:10], format_duration(r["quiet_days"] * 86_400_000),
                  r["orders"], format_money(r["revenue_minor"])) for r in section["at_risk"]]
    activity = "a completed purchase" if prm["activity"] == "purchase" else "customer activity"
    return f"""
<h2 id="customers-churn">Churn per {_e(prm["period"])}</h2>
<div class="sub">{s["customers"]:,} customers ({s["identified"]:,} identified), {s["buyers"]:,} buyers, repeat-purchase
rate {_e(format_rate(s["repeat_purchase_rate"]))}, {s["unsubscribed"]:,} unsubscribed. A customer churns after
{_e(format_number(prm["inactivity_days"], 0))} days without {activity}; churn rate = churned ÷ active at the period's start
(new customers of the period excluded).</div>
<div class="charts">{line_chart(churn_points, "Churn rate %", "%", width=520)}</div>
{_table(("period", "active at start", "churned", "churn rate", "new", "unsubscribed"), churn_rows,
        (False, True, True, True, True, True))}
<h2 id="customers-lifecycle">Lifecycle</h2>{lifecycle_chart(section["lifecycle"], f"Customers per {prm['period']}: new, returning, resurrecting, dormant")}
<h2 id="customers-cohorts">Retention cohorts</h2>
<div class="sub">by first-purchase {_e(section["cohorts"]["period"])}; cell = share of the cohort buying again in that
{_e(section["cohorts"]["period"])} ("on"); repeat = share with two or more purchases.</div>
{cohort_heatmap(section["cohorts"])}
<h2 id="customers-sales-cycle">Sales-cycle length</h2>{dist}
{_table(("measure", "customers / journeys", "average", "median", "p90"), cycle_rows, (False, True, True, True, True))}
<h2 id="customers-at-risk">At risk ({section["at_risk_total"]:,})</h2>
<div class="sub">last experience bad and quiet for at least {_e(format_number(prm["quiet_share"] * prm["inactivity_days"], 0))} days; highest revenue first.</div>
{_table(("customer", "reason", "since", "quiet", "orders", "revenue"), risk_rows, (False, False, False, True, True, True))}
"""
