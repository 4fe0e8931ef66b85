"""`touchpoint query "SQL"` and `touchpoint report`: read-only analyst commands over the store settings name.

The route to the store (a ClickHouse server, the read-only port of the process owning the embedded store, or
the embedded store opened directly) is chosen by ``touchpoint.sinks.access.open_access``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from touchpoint.config import get_settings
from touchpoint.sinks.report import format_minor as _minor
from touchpoint.sinks.report import format_money as _money
from touchpoint.sinks.report import format_number as _num
from touchpoint.sinks.report import format_rate as _pct

_out = Console()
_err = Console(stderr=True)

_NUMERIC = re.compile(r"^(?:Nullable\(|LowCardinality\()*(?:U?Int|Float|Decimal)")
_WIDE_INT = re.compile(r"^(?:Nullable\(|LowCardinality\()*U?Int(?:64|128|256)\)*$")


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    tsv = "tsv"
    json = "json"


def query(
    sql: str = typer.Argument(..., help="One read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, ...); '-' reads it from stdin."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table (rich), csv or tsv (with a header row), json (an array of row objects)."),
    max_rows: int = typer.Option(1000, "--max-rows", help="Rows shown in table format (0: all). Other formats print every row."),
) -> None:
    """Run a read-only SQL query against the pipeline's ClickHouse store and print the result.

    Unqualified table names resolve in the pipeline's database (TOUCHPOINT_CLICKHOUSE_DATABASE). Writes are
    refused. While `touchpoint sink` or `touchpoint run` owns the embedded store, the query goes through its
    read-only SQL port; otherwise the store is opened directly.
    """
    from touchpoint.sinks.access import open_access

    if sql == "-":
        sql = sys.stdin.read()
    with open_access(get_settings()) as access:
        if output is OutputFormat.csv:
            sys.stdout.buffer.write(access.raw(sql, "CSVWithNames"))
        elif output is OutputFormat.tsv:
            sys.stdout.buffer.write(access.raw(sql, "TSVWithNames"))
        else:
            data = access.raw(sql, "JSONCompact")
            try:
                parsed = json.loads(data)
            except ValueError:  # the statement chose its own FORMAT: print what it produced
                sys.stdout.buffer.write(data)
                return
            meta = parsed.get("meta", [])
            names = [m["name"] for m in meta]
            rows = [[_typed(v, m["type"]) for v, m in zip(row, meta)] for row in parsed.get("data", [])]
            if output is OutputFormat.json:
                sys.stdout.write(json.dumps([dict(zip(names, r)) for r in rows], ensure_ascii=False, indent=2) + "\n")
            else:
                _print_table(names, [m["type"] for m in meta], rows, max_rows)


def _typed(value: Any, type_name: str) -> Any:
    """ClickHouse's JSON quotes 64-bit and wider integers; give them back as numbers."""
    if isinstance(value, str) and _WIDE_INT.match(type_name):
        try:
            return int(value)
        except ValueError:
            return value
    return value


def _print_table(names: list[str], types: list[str], rows: list[list[Any]], max_rows: int) -> None:
    table = Table(show_lines=False)
    for name, type_name in zip(names, types):
        numeric = _NUMERIC.match(type_name) is not None
        table.add_column(f"{name}\n[dim]{type_name}[/dim]", justify="right" if numeric else "left")
    shown = rows if max_rows <= 0 else rows[:max_rows]
    for row in shown:
        table.add_row(*["[dim]NULL[/dim]" if v is None else str(v) if not isinstance(v, (dict, list)) else json.dumps(v, ensure_ascii=False) for v in row])
    _out.print(table)
    more = f" (showing {len(shown)}; --max-rows 0 or --format csv for all)" if len(shown) < len(rows) else ""
    _err.print(f"[dim]{len(rows)} row{'s' if len(rows) != 1 else ''}{more}[/dim]")


def report(
    as_json: bool = typer.Option(False, "--json", help="Print the report's numbers as JSON (keys: see touchpoint.sinks.report.build_report)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the report with charts to this self-contained HTML file."),
    funnel_window_days: Optional[float] = typer.Option(None, "--funnel-window-days", help="Window in which the funnel steps must follow the first step (default: setting funnel_window_days, 14)."),
) -> None:
    """The headline customer-experience view: funnel, NPS / CSAT / CES over time, on-time delivery, time to
    resolution, top journey paths, campaign conversion, email engagement, checkout abandonment; and data quality:
    dead letters by reason (read from the dead-letter topic) and late touchpoints."""
    from touchpoint.sinks.access import open_access
    from touchpoint.sinks.report import build_report

    from touchpoint.sinks.customers import customer_params
    from touchpoint.sinks.report_journeys import JourneyOptions

    settings = get_settings()
    options = JourneyOptions.from_settings(settings)
    if funnel_window_days is not None:
        if not funnel_window_days > 0:
            _err.print(f"[bold red]usage error:[/bold red] --funnel-window-days: must be > 0 days, got {funnel_window_days:g}")
            raise typer.Exit(2)
        options = dataclasses.replace(options, funnel_window_days=funnel_window_days)
    with open_access(settings) as access:
        data = build_report(access.client, settings.clickhouse_database, funnel_window_days=options.funnel_window_days,
                            customer_params=customer_params(settings), journey_options=options)
    from touchpoint.sinks.report_quality import quality_section, render_quality

    data.update(quality_section(data, settings))
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        render_report(data, _out)
        render_quality(data, _out)
    if html is not None:
        from touchpoint.sinks.report_html import write_html

        write_html(data, html)
        _err.print(f"wrote {html}")


# ---- rendering ------------------------------------------------------------------------------------------

def render_report(report: dict[str, Any], console: Console) -> None:
    """Print ``build_report``'s result with rich: headline figures, funnel, daily KPIs, paths, campaigns, email."""
    t = report["totals"]
    console.rule(f"[bold]customer experience[/bold] — {report['database']}")
    head = Table.grid(padding=(0, 3))
    head.add_column(style="dim")
    head.add_column(justify="right", style="bold")
    head.add_column(style="dim")
    head.add_column(justify="right", style="bold")
    pairs = [
        ("touchpoints", _num(t["touchpoints"])), ("customers", _num(t["customers"])),
        ("NPS", f"{_num(t['nps'])}  ({t['nps_promoters']}/{t['nps_passives']}/{t['nps_detractors']} P/P/D)"),
        ("CSAT", _num(t["csat_pct"], suffix="%")), ("CES (avg)", _num(t["ces_avg"], 2)),
        ("on-time delivery", _num(t["on_time_pct"], suffix="%")),
        ("checkout conversion", _pct(t["conversion_rate"])), ("checkout abandonment", _pct(t["abandonment_rate"])),
        ("time to resolution avg", _num(t["avg_resolution_seconds"], 0, " s")),
        ("time to resolution p90", _num(t["p90_resolution_seconds"], 0, " s")),
        ("email open rate", _pct(t["open_rate"])), ("email CTR", _pct(t["ctr"])),
        ("revenue", _money(t["revenue_minor"])), ("identity merges", _num(t["identity_merges"])),
    ]
    for i in range(0, len(pairs), 2):
        a, b = pairs[i], pairs[i + 1] if i + 1 < len(pairs) else ("", "")
        head.add_row(a[0], a[1], b[0], b[1])
    console.print(head)
    late = int((report.get("totals_from_metrics") or {}).get("late_events") or 0)
    if late:
        console.print(f"[dim]{late:,} late touchpoints were added as corrections[/dim]")

    funnel = Table("step", "people", "of first", "of previous", "", title="funnel (windowFunnel, identity-resolved)", title_justify="left")
    first = max((s["customers"] for s in report["funnel"]), default=0) or 1
    for step in report["funnel"]:
        bar = "█" * round(30 * step["customers"] / first)
        funnel.add_row(step["label"], _num(step["customers"]), _num(step["pct_of_first"], suffix="%"),
                       _num(step["pct_of_previous"], suffix="%"), f"[cyan]{bar}[/cyan]")
    if "journey_funnel" not in report:  # else the funnel of the steps the data holds is shown (render_report_sections)
        console.print(funnel)

    daily = Table("day", "touchpoints", "conversion", "NPS", "CSAT", "CES", "on time", "open", "CTR", "resolution avg / p90",
                  title="per day (from metric components)", title_justify="left")
    for d in report["daily"]:
        daily.add_row(str(d["day"]), _num(d["touchpoints"]), _pct(d["conversion_rate"]), _num(d["nps"]),
                      _num(d["csat_pct"], suffix="%"), _num(d["ces_avg"], 2), _num(d["on_time_pct"], suffix="%"),
                      _pct(d["open_rate"]), _pct(d["ctr"]),
                      f"{_num(d['avg_resolution_seconds'], 0)} / {_num(d['p90_resolution_seconds'], 0)} s")
    console.print(daily)

    paths = Table("journey path", "journeys", "converted", "conversion", title="top journey paths", title_justify="left")
    for p in report["top_paths"]:
        paths.add_row(p["path"] or "(empty)", _num(p["journeys"]), _num(p["converted_journeys"]), _num(p["conversion_pct"], suffix="%"))
    console.print(paths)

    campaigns = Table("campaign", "clicks", "spend", "conversions", "revenue", "conversion", "cost / conversion",
                      title="campaigns (last-touch attribution)", title_justify="left")
    for c in report["campaigns"]:
        cur = c["currency"]
        cost = c["cost_per_conversion_minor"]
        campaigns.add_row(c["campaign_id"], _num(c["clicks"]), f"{_minor(c['spend_minor'])} {cur}",
                          _num(c["attributed_conversions"]), f"{_minor(c['attributed_revenue_minor'])} {cur}",
                          _pct(c["conversion_rate"]), "—" if cost is None else f"{_minor(cost)} {cur}")
    console.print(campaigns)

    emails = Table("email campaign", "sent", "opened", "clicked", "open rate", "CTR", title="email", title_justify="left")
    for e in report["email_campaigns"]:
        emails.add_row(e["campaign_id"], _num(e["sent"]), _num(e["opened"]), _num(e["clicked"]), _pct(e["open_rate"]), _pct(e["ctr"]))
    console.print(emails)

    if "customers" in report:
        from touchpoint.sinks.report_customers import render_customers

        render_customers(report["customers"], console)
    from touchpoint.cli.journeys import render_report_sections

    render_report_sections(report, console)
