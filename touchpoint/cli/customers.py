"""`touchpoint customers list|at-risk|churn|lifecycle|cohorts|sales-cycle`: the customer layer for analysts.

Thin: parse options, call ``touchpoint.sinks.customers`` (definitions there and in sinks/README.md), print a
rich table, CSV or JSON. Defaults of the churn window, the qualifying activity and the at-risk quiet share come
from settings (TOUCHPOINT_CHURN_INACTIVITY_DAYS, TOUCHPOINT_CHURN_ACTIVITY, TOUCHPOINT_AT_RISK_QUIET_SHARE).
Bad options exit 2 with a message naming the option and its valid values.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from touchpoint.config import get_settings

app = typer.Typer(no_args_is_help=True, help="Customers, churn, lifecycle, retention cohorts, at-risk list and sales cycle "
                                             "over identity-resolved customers.")
_out = Console()


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class Period(str, Enum):
    month = "month"
    week = "week"


class Activity(str, Enum):
    any = "any"
    purchase = "purchase"


class CohortBy(str, Enum):
    purchase = "purchase"
    touch = "touch"


class Breakdown(str, Enum):
    campaign = "campaign"
    channel = "channel"
    platform = "platform"


def _positive_days(value: Optional[float]) -> Optional[float]:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value:g} is not a positive number of days; use e.g. 90 (default: the churn_inactivity_days setting)")
    return value


def _share(value: Optional[float]) -> Optional[float]:
    if value is not None and not 0 < value <= 1:
        raise typer.BadParameter(f"{value:g} is not a share in (0, 1]; use e.g. 0.5 (half of the inactivity window)")
    return value


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table (rich), csv (with a header row) or json.")]
PeriodOpt = Annotated[Period, typer.Option("--period", help="Period of the figures: month or week.")]
DaysOpt = Annotated[Optional[float], typer.Option("--inactivity-days", callback=_positive_days,
                                                  help="Days without qualifying activity after which a customer churns (> 0). Default: setting churn_inactivity_days.")]
ActivityOpt = Annotated[Optional[Activity], typer.Option("--activity", help="Qualifying activity: any (customer-initiated touchpoint) or purchase. Default: setting churn_activity.")]
AsOfOpt = Annotated[Optional[datetime], typer.Option("--as-of", help="Compute as of this time (UTC), e.g. 2026-06-30. Default: the newest stored touchpoint.")]


def _params(period: Period = Period.month, inactivity_days: Optional[float] = None, activity: Optional[Activity] = None,
            as_of: Optional[datetime] = None, quiet_share: Optional[float] = None) -> Any:
    from touchpoint.sinks.customers import customer_params

    as_of_ms = None
    if as_of is not None:
        aware = as_of.replace(tzinfo=timezone.utc) if as_of.tzinfo is None else as_of
        as_of_ms = int(aware.timestamp() * 1000)
    return customer_params(get_settings(), period=period.value, inactivity_days=inactivity_days,
                           activity=activity.value if activity else None, as_of_ms=as_of_ms, quiet_share=quiet_share)


def _run(fn: Callable[[Any, str], Any]) -> Any:
    from touchpoint.sinks.access import open_access

    settings = get_settings()
    with open_access(settings) as access:
        return fn(access.client, settings.clickhouse_database)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _emit(rows: Sequence[dict[str, Any]], fmt: Format, title: str,
          shown: Optional[Mapping[str, Callable[[Any], str]]] = None) -> None:
    """Rows as a rich table (``shown`` formats some columns for people), CSV or JSON (exact values)."""
    if fmt is Format.json:
        sys.stdout.write(json.dumps(list(rows), ensure_ascii=False, indent=2) + "\n")
        return
    names = list(rows[0]) if rows else []
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        for r in rows:
            writer.writerow([_cell(r[n]) for n in names])
        return
    table = Table(*names, title=title, title_justify="left")
    for r in rows:
        table.add_row(*[(shown or {}).get(n, _cell)(r[n]) for n in names])
    _out.print(table)
    if not rows:
        _out.print("[dim]no rows[/dim]")


@app.command("list")
def list_(fmt: FormatOpt = Format.table,
          limit: Annotated[int, typer.Option("--limit", min=0, help="Rows to print, highest revenue first (0: all).")] = 100) -> None:
    """One row per identity-resolved customer: first/last touch and purchase, orders, revenue per currency, latest
    NPS/CSAT answer, support contacts, unsubscribed, first-touch campaign/channel/platform."""
    from touchpoint.sinks.customers import customer_list
    from touchpoint.sinks.report import format_money

    rows = _run(lambda c, db: customer_list(c, db, limit=limit or None))
    if fmt is Format.table:  # the columns that fit a terminal; csv/json carry every column
        rows = [{"customer": r["customer_id"], "orders": r["orders"], "revenue": format_money(r["revenue_minor"]),
                 "first touch": _when(r["first_touch_at"]), "last touch": _when(r["last_touch_at"]),
                 "first purchase": _when(r["first_purchase_at"]), "NPS": r["last_nps_score"],
                 "tickets": r["support_tickets"], "unsubscribed": "yes" if r["unsubscribed"] else "",
                 "first-touch channel": r["first_touch_channel"], "campaign": r["first_touch_campaign"]} for r in rows]
    _emit(rows, fmt, "customers (highest revenue first)")


def _when(iso: Optional[str]) -> str:
    return "" if iso is None else iso[:16].replace("T", " ")


@app.command("at-risk")
def at_risk(fmt: FormatOpt = Format.table, inactivity_days: DaysOpt = None, activity: ActivityOpt = None,
            quiet_share: Annotated[Optional[float], typer.Option("--quiet-share", callback=_share,
                                                                 help="Quiet for at least this share of the inactivity window (0-1]. Default: setting at_risk_quiet_share.")] = None,
            as_of: AsOfOpt = None,
            limit: Annotated[int, typer.Option("--limit", min=0, help="Rows to print (0: all).")] = 0) -> None:
    """Customers whose last experience was bad (detractor, dissatisfied, late/failed delivery, unresolved ticket)
    and who have been quiet since, not churned yet; highest revenue first, with the reason and its date."""
    from touchpoint.sinks.customers import at_risk as query
    from touchpoint.sinks.report_customers import format_duration

    p = _params(inactivity_days=inactivity_days, activity=activity, as_of=as_of, quiet_share=quiet_share)
    rows = _run(lambda c, db: query(c, db, p, limit=limit or None))
    from touchpoint.sinks.report import format_money

    _emit(rows, fmt, "customers at risk (highest revenue first)",
          {"quiet_days": lambda v: format_duration(v * 86_400_000), "revenue_minor": format_money,
           "reason_at": _when, "last_active_at": _when})


@app.command("churn")
def churn(fmt: FormatOpt = Format.table, period: PeriodOpt = Period.month, inactivity_days: DaysOpt = None,
          activity: ActivityOpt = None, as_of: AsOfOpt = None) -> None:
    """Churn per period: customers active at its start, churned during it, churn and retention rate (ratios of
    these counts), new customers (not in the denominator), e-mail unsubscribes (an explicit signal, separate)."""
    from touchpoint.sinks.customer_periods import churn as query
    from touchpoint.sinks.report import format_rate

    p = _params(period, inactivity_days, activity, as_of)
    _emit(_run(lambda c, db: query(c, db, p)), fmt, f"churn per {period.value}",
          {"churn_rate": format_rate, "retention_rate": format_rate})


@app.command("lifecycle")
def lifecycle(fmt: FormatOpt = Format.table, period: PeriodOpt = Period.month, activity: ActivityOpt = None,
              as_of: AsOfOpt = None) -> None:
    """Customers per period that are new, returning, resurrecting or dormant (PostHog's lifecycle)."""
    from touchpoint.sinks.customer_periods import lifecycle as query

    p = _params(period, None, activity, as_of)
    _emit(_run(lambda c, db: query(c, db, p)), fmt, f"lifecycle per {period.value}")


@app.command("cohorts")
def cohorts(fmt: FormatOpt = Format.table, period: PeriodOpt = Period.month,
            cohort_by: Annotated[CohortBy, typer.Option("--cohort-by", help="purchase (first completed purchase) or touch (first activity).")] = CohortBy.purchase,
            returning: Annotated[Activity, typer.Option("--returning", help="What counts as coming back: purchase or any activity.")] = Activity.purchase,
            as_of: AsOfOpt = None) -> None:
    """Retention cohorts: per cohort and period offset, customers active "on" that period and "on or after" it,
    their share of the cohort, revenue per currency; repeat-purchase rate per cohort."""
    from touchpoint.sinks.customer_periods import cohorts as query

    p = _params(period, None, None, as_of)
    data = _run(lambda c, db: query(c, db, p, cohort_by=cohort_by.value, returning=returning.value))
    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return
    rows = [{"cohort": x["cohort"], "customers": x["customers"], "offset": e["offset"], "on": e["on"],
             "on_or_after": e["on_or_after"], "on_rate": e["on_rate"], "on_or_after_rate": e["on_or_after_rate"],
             "revenue_minor": x["revenue_minor"][e["offset"]], "repeat_purchase_rate": x["repeat_purchase_rate"]}
            for x in data["cohorts"] for e in x["retention"]]
    from touchpoint.sinks.report import format_rate

    _emit(rows, fmt, f"cohorts by first {cohort_by.value} {period.value}",
          {"on_rate": format_rate, "on_or_after_rate": format_rate, "repeat_purchase_rate": format_rate})


@app.command("sales-cycle")
def sales_cycle(fmt: FormatOpt = Format.table,
                by: Annotated[Optional[Breakdown], typer.Option("--by", help="Break down by the first touch's campaign, channel or platform.")] = None) -> None:
    """Sales-cycle length: first touch (anonymous history included) → first completed purchase per customer, and
    the journey-level variant (a journey's first touch → its conversion): count, average, median, p90."""
    from touchpoint.sinks.customers import sales_cycle as query
    from touchpoint.sinks.report_customers import format_duration

    data = _run(lambda c, db: query(c, db, by=by.value if by else None))
    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return
    rows = [{"measure": "customer: first touch -> first purchase", **data["customer_level"]},
            {"measure": "journey: first touch -> conversion", **data["journey_level"]}]
    rows += [{"measure": f"{by.value if by else ''}={b['value'] or '(none)'}", **{k: v for k, v in b.items() if k != "value"}}
             for b in data.get("breakdown", [])]
    dur = {k: format_duration for k in ("avg_ms", "median_ms", "p90_ms", "cycle_ms_sum")}
    _emit(rows, fmt, "sales-cycle length", dur)
