"""`touchpoint funnel`, `touchpoint stages`, `touchpoint pain-points`, `touchpoint attribution`: journey analysis
over the store settings name (read-only; the route is chosen by ``touchpoint.sinks.access.open_access``).

Arguments are validated before the store is opened; a bad one exits with code 2 and a message naming the argument
and its valid values.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from touchpoint.config import get_settings
from touchpoint.sinks.funnels import AnalysisInputError

_out = Console()
_err = Console(stderr=True, highlight=False)
T = TypeVar("T")


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _usage(call: Callable[[], T]) -> T:
    """Run a validation; a bad argument becomes `error: ARG: ...` on stderr and exit code 2."""
    try:
        return call()
    except AnalysisInputError as exc:
        _err.print(f"[bold red]usage error:[/bold red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def _fail(argument: str, message: str) -> None:
    _usage(lambda: _raise(AnalysisInputError(argument, message)))


def _raise(exc: Exception) -> None:
    raise exc


@contextmanager
def _client() -> Iterator[tuple[Any, str]]:
    """The store's client; a failed query becomes the server's own message (exit 1), not a traceback."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from touchpoint.sinks.access import client_error, open_access

    settings = get_settings()
    with open_access(settings) as access:
        try:
            yield access.client, settings.clickhouse_database
        except ClickHouseError as exc:
            raise client_error(exc) from exc


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _f(value: Any, digits: int = 1, suffix: str = "") -> str:
    from touchpoint.sinks.report import format_number

    return format_number(value, digits, suffix)


def funnel(
    step: list[str] = typer.Option(..., "--step", "-s", help="A step: EVENT_TYPE[:field=value,...] (e.g. CHECKOUT:status=completed, "
                                   "SURVEY_RESPONSE:survey_kind=NPS, PAGE_VIEW:context.utm_medium=cpc). Repeat, in order (2 or more)."),
    window_days: Optional[float] = typer.Option(None, "--window-days", "-w", help="Conversion window: every step within this many days of step 1 (default: setting funnel_window_days, 14)."),
    mode: str = typer.Option("sequential", "--mode", help="sequential (other touchpoints may come between steps) or strict (each step is the customer's very next touchpoint)."),
    breakdown: Optional[str] = typer.Option(None, "--breakdown", "-b", help="Split by the customer's first-touch channel, campaign, platform, or context.KEY."),
    dropped_at: Optional[int] = typer.Option(None, "--dropped-at", help="List the customer ids that reached step N-1 but not step N."),
    output: Format = typer.Option(Format.table, "--format", "-f", help="table, json or csv."),
) -> None:
    """A funnel of your own steps over identity-resolved customers: per step customers, % of first, % of previous,
    median time from the previous step; optionally by breakdown, or the customers who dropped at a step."""
    from touchpoint.sinks import funnels as fn

    window = window_days if window_days is not None else get_settings().funnel_window_days
    steps = _usage(lambda: fn.parse_steps(step))
    _usage(lambda: fn.check_window(window))
    _usage(lambda: fn.check_mode(mode))
    _usage(lambda: fn.breakdown_sql(breakdown, {}))
    if dropped_at is not None and not 2 <= dropped_at <= len(steps):
        _fail("--dropped-at", f"must be a step number from 2 to {len(steps)}, got {dropped_at}")
    with _client() as (client, db):
        if dropped_at is not None:
            ids = fn.dropped_at(client, db, steps, window, dropped_at, mode)
            if output is Format.json:
                _json({"dropped_at_step": dropped_at, "label": steps[dropped_at - 1].label, "customers": ids})
            elif output is Format.csv:
                w = csv.writer(sys.stdout)
                w.writerow(["customer_id"])
                w.writerows([i] for i in ids)
            else:
                for i in ids:
                    _out.print(i, highlight=False)
                _err.print(f"[dim]{len(ids)} customers reached step {dropped_at - 1} but not step {dropped_at}[/dim]")
            return
        result = fn.run_funnel(client, db, steps, window, mode, breakdown)
    rows = fn.as_dicts(result)
    if output is Format.json:
        _json({"window_days": window, "mode": mode, "breakdown": breakdown, "steps": [s.text for s in steps],
               "rows": rows})
    elif output is Format.csv:
        table = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["step"])
        table.writeheader()
        table.writerows(rows)
    else:
        render_funnel(rows, _out, f"funnel ({mode}, window {window:g} d, identity-resolved customers)")


def render_funnel(rows: list[dict[str, Any]], console: Console, title: str) -> None:
    table = Table("breakdown", "step", "customers", "of first", "of previous", "median from previous", "",
                  title=title, title_justify="left")
    for r in rows:
        first = next((x["customers"] for x in rows if x["breakdown"] == r["breakdown"] and x["step"] == 1), 0) or 1
        table.add_row(r["breakdown"] or "all", f'{r["step"]}. {r["label"]}', _f(r["customers"]),
                      _f(r["pct_of_first"], suffix="%"), _f(r["pct_of_previous"], suffix="%"),
                      _duration(r["median_seconds_from_previous"]), "[cyan]" + "█" * round(24 * r["customers"] / first) + "[/cyan]")
    console.print(table)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def stages(
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Drop-off by journey stage: journeys that reached each stage, stalled there (or are still open), their median
    dwell time and most common last touchpoints."""
    from touchpoint.sinks.stages import run_stages

    gap = get_settings().journey_inactivity_days
    with _client() as (client, db):
        rows = run_stages(client, db, gap)
    if as_json:
        _json(rows)
    else:
        render_stages(rows, _out)


def render_stages(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table("stage", "reached", "stalled", "still open", "median dwell", "last touchpoints before a stall",
                  title="journey stages (current journeys)", title_justify="left")
    for r in rows:
        last = ", ".join(f'{t["touchpoint"]} {t["journeys"]}' for t in r["last_touchpoints"])
        table.add_row(r["stage"], _f(r["reached"]), _f(r["stalled"]), _f(r["still_open"]),
                      _duration(r["median_dwell_seconds"]), last or "—")
    console.print(table)


def pain_points(
    lookback_days: Optional[float] = typer.Option(None, "--lookback-days", help="What happened this many days before an answer counts (default: setting pain_point_lookback_days, 30)."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """NPS, CSAT and CES split by what preceded each answer (delivery outcome, support contact and its resolution
    time, failed/abandoned checkout, channel), ranked by lift in the bad-answer share over the base rate."""
    from touchpoint.sinks.pain_points import run_pain_points

    lookback = lookback_days if lookback_days is not None else get_settings().pain_point_lookback_days
    if not lookback > 0:
        _fail("--lookback-days", f"must be > 0 days, got {lookback:g}")
    with _client() as (client, db):
        rows = run_pain_points(client, db, lookback)
    if as_json:
        _json(rows)
    else:
        render_pain_points(rows, _out)


def render_pain_points(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table("preceded by", "answers", "bad answers", "lift", "NPS (n)", "CSAT (n)", "CES (n)",
                  title="pain points: bad-answer share (NPS 0-6, CSAT below top two, CES bottom three) vs all answers",
                  title_justify="left")
    for r in rows:
        label = "all answers" if r["factor"] == "all" else f'{r["factor"]}: {r["value"]}'
        small = " [dim](small)[/dim]" if r["responses"] < 30 else ""
        lift = "—" if r["lift_pp"] is None or r["factor"] == "all" else f'{r["lift_pp"]:+.1f} pp'
        table.add_row(label + small, _f(r["responses"]), _f(r["bad_pct"], suffix="%"), lift,
                      f'{_f(r["nps"])} ({r["nps_responses"]})', f'{_f(r["csat_pct"], suffix="%")} ({r["csat_total"]})',
                      f'{_f(r["ces_avg"], 2)} ({r["ces_count"]})')
    console.print(table)


def attribution(
    model: list[str] = typer.Option([], "--model", "-m", help="first_touch, last_touch, linear, time_decay, position_based (repeat; default: all)."),
    by: str = typer.Option("campaign", "--by", help="campaign or channel."),
    lookback_days: Optional[float] = typer.Option(None, "--lookback-days", help="Touches at most this many days before a conversion (default: setting attribution_lookback_days, 30)."),
    half_life_days: Optional[float] = typer.Option(None, "--half-life-days", help="Half-life of time_decay (default: setting attribution_half_life_days, 7)."),
    touches: Optional[str] = typer.Option(None, "--touches", help="Marketing touches, step specs separated by ';' (default: setting attribution_touches)."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON (every row names its model)."),
) -> None:
    """Conversions (completed checkouts) credited to campaigns or channels under each attribution model, with
    spend, cost per conversion and ROAS. Credit of every model adds up to the number of conversions exactly."""
    from touchpoint.sinks import attribution as at

    settings = get_settings()
    models = _usage(lambda: at.check_models(model or list(at.MODELS)))
    _usage(lambda: at.check_by(by))
    touch_steps = _usage(lambda: at.parse_touches(touches if touches is not None else settings.attribution_touches,
                                                  "--touches" if touches is not None else "attribution_touches"))
    lookback = lookback_days if lookback_days is not None else settings.attribution_lookback_days
    half_life = half_life_days if half_life_days is not None else settings.attribution_half_life_days
    for name, value in (("--lookback-days", lookback), ("--half-life-days", half_life)):
        if not value > 0:
            _fail(name, f"must be > 0 days, got {value:g}")
    with _client() as (client, db):
        credits = at.run_attribution(client, db, touches=touch_steps, models=models, by=by, lookback_days=lookback,
                                     half_life_days=half_life)
    rows = at.as_dicts(credits)
    if as_json:
        _json({"by": by, "lookback_days": lookback, "half_life_days": half_life, "rows": rows})
    else:
        render_attribution(rows, _out, by)


def render_attribution(rows: list[dict[str, Any]], console: Console, by: str) -> None:
    from touchpoint.sinks.report import format_minor

    table = Table("model", by, "currency", "conversions", "revenue", "spend", "cost / conversion", "ROAS",
                  title=f"attribution by {by} (model named on every row)", title_justify="left")
    for r in rows:
        table.add_row(r["model"], r["key"], r["currency"], f'{r["conversions"]:,.3f}',
                      format_minor(r["attributed_revenue_minor"]), format_minor(r["spend_minor"] or None),
                      format_minor(r["cost_per_conversion_minor"]), _f(r["roas"], 2))
    console.print(table)


def render_report_sections(report: dict[str, Any], console: Console) -> None:
    """The report's journey-analysis sections (``touchpoint.sinks.report_journeys``) with rich."""
    from touchpoint.sinks.attribution import BY

    if "journey_funnel" not in report:
        return
    jf = report["journey_funnel"]
    render_funnel(jf["rows"], console, f'funnel from the data ({" → ".join(jf["steps"])}, window '
                                        f'{jf["window_days"]:g} d, identity-resolved customers)')
    render_stages(report["stages"], console)
    render_pain_points(report["pain_points"], console)
    for key in BY:
        render_attribution(report["attribution"][f"by_{key}"], console, key)
