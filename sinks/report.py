"""The headline customer-experience report: one library function, ``build_report(client, database)``.

Used by ``touchpoint report`` (rich / ``--json`` / ``--html``), by ``touchpoint demo`` (compared with the
simulator's truth) and by tests. Read-only SQL only, so it runs through the sink's read-only port as well.

Sources and why:
- **Totals** come from the raw ``touchpoints`` table read with ``FINAL`` (a replayed ``event_id`` counts once),
  with the definitions of ``producers/simulation/truth.py``: plain event counts per event type / status /
  action; a ``delivered`` notice is on time when ``occurred_at <= promised_by``; a shipment is a failed delivery
  once, when a ``failed_attempt``/``returned`` notice precedes its first ``delivered`` (or it is never delivered); NPS promoters 9-10, passives 7-8, detractors 0-6; CSAT satisfied = one of the top two
  answers of the scale; a ticket's resolution time = its first ``resolved`` minus its first ``opened``.
- **totals_from_metrics** recomputes the same figures from the worker's additive metric components
  (``metrics_minute_current``, FINAL), so a reader can see the stream processor agrees with the raw events.
- **daily** KPIs come from metric components (``kpi_day``): every ratio is a ratio of sums, never an average of
  averages. Per-day resolution times (avg, p90) need per-ticket durations, so they come from raw touchpoints.
- **funnel** uses ClickHouse ``windowFunnel`` over identity-resolved raw touchpoints (``touchpoints_resolved``:
  an anonymous visitor stitched to a customer is that customer).
- **top_paths** from current journeys (``journey_paths``), **campaigns** from ``campaign_performance``
  (attribution is the worker's: last campaign before the conversion), **email_campaigns** from raw touchpoints.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from touchpoint.errors import ConfigError

FUNNEL_STEPS: tuple[tuple[str, str, str], ...] = (
    ("ad_click", "Ad click", "event_type = 'AD_CLICK'"),
    ("checkout_started", "Checkout started", "event_type = 'CHECKOUT' AND checkout_status = 'started'"),
    ("checkout_completed", "Checkout completed", "event_type = 'CHECKOUT' AND checkout_status = 'completed'"),
    ("delivered", "Delivered", "event_type = 'DELIVERY_NOTICE' AND delivery_status = 'delivered'"),
    ("surveyed", "Surveyed", "event_type = 'SURVEY_RESPONSE'"),
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_RAW_TOTALS = """
SELECT
    count() AS touchpoints,
    uniqExactIf(customer_id, customer_id != '') AS customers,
    uniqExactIf(anonymous_id, anonymous_id != '') AS anonymous_visitors,
    countIf(event_type = 'AD_CLICK') AS ad_clicks,
    countIf(event_type = 'CHECKOUT' AND checkout_status = 'started') AS checkouts_started,
    countIf(event_type = 'CHECKOUT' AND checkout_status = 'completed') AS checkouts_completed,
    countIf(event_type = 'CHECKOUT' AND checkout_status = 'abandoned') AS checkouts_abandoned,
    countIf(event_type = 'CHECKOUT' AND checkout_status = 'failed') AS checkouts_failed,
    countIf(event_type = 'DELIVERY_NOTICE' AND delivery_status = 'delivered') AS deliveries_delivered,
    countIf(event_type = 'DELIVERY_NOTICE' AND delivery_status = 'delivered' AND occurred_at <= promised_by) AS deliveries_on_time,
    countIf(event_type = 'DELIVERY_NOTICE' AND delivery_status = 'delivered' AND occurred_at > promised_by) AS deliveries_late,
    -- a shipment fails once: its first failed_attempt/returned notice, unless it was delivered before (the worker's rule)
    (SELECT count() FROM (
        SELECT minIf(occurred_at, delivery_status != 'delivered') AS first_failure,
               minIf(occurred_at, delivery_status = 'delivered') AS first_delivery,
               countIf(delivery_status = 'delivered') AS delivered
        FROM {db}.touchpoints FINAL
        WHERE event_type = 'DELIVERY_NOTICE' AND delivery_status IN ('failed_attempt', 'returned', 'delivered')
        GROUP BY shipment_id
        HAVING countIf(delivery_status != 'delivered') > 0)
     WHERE delivered = 0 OR first_failure < first_delivery) AS deliveries_failed,
    toInt64(sumIf(dateDiff('millisecond', promised_by, occurred_at),
                  event_type = 'DELIVERY_NOTICE' AND delivery_status = 'delivered' AND occurred_at > promised_by)) AS delivery_delay_ms_sum,
    countIf(survey_kind = 'NPS' AND score >= 9) AS nps_promoters,
    countIf(survey_kind = 'NPS' AND score BETWEEN 7 AND 8) AS nps_passives,
    countIf(survey_kind = 'NPS' AND score <= 6) AS nps_detractors,
    countIf(survey_kind = 'CSAT' AND score >= scale_max - 1) AS csat_satisfied,
    countIf(survey_kind = 'CSAT') AS csat_total,
    toInt64(sumIf(score, survey_kind = 'CES')) AS ces_sum,
    countIf(survey_kind = 'CES') AS ces_count,
    countIf(event_type = 'EMAIL_ENGAGEMENT' AND email_action = 'sent') AS emails_sent,
    countIf(event_type = 'EMAIL_ENGAGEMENT' AND email_action = 'opened') AS emails_opened,
    countIf(event_type = 'EMAIL_ENGAGEMENT' AND email_action = 'clicked') AS emails_clicked,
    countIf(event_type = 'EMAIL_ENGAGEMENT' AND email_action = 'bounced') AS emails_bounced,
    countIf(event_type = 'EMAIL_ENGAGEMENT' AND email_action = 'unsubscribed') AS emails_unsubscribed
FROM {db}.touchpoints FINAL
"""

# One row per ticket: first opened, first resolved (the truth module's definition).
_TICKETS = """
SELECT ticket_id,
       minIf(occurred_at, support_action = 'opened') AS opened_at,
       minIf(occurred_at, support_action = 'resolved') AS resolved_at,
       countIf(support_action = 'opened') > 0 AS has_opened,
       countIf(support_action = 'resolved') > 0 AS has_resolved
FROM {db}.touchpoints FINAL
WHERE event_type = 'SUPPORT_INTERACTION' AND ticket_id != ''
GROUP BY ticket_id
"""

_METRIC_COMPONENTS = (
    "touchpoints", "ad_clicks", "checkouts_started", "checkouts_completed", "checkouts_abandoned", "checkouts_failed",
    "deliveries_delivered", "deliveries_on_time", "deliveries_late", "deliveries_failed", "delivery_delay_ms_sum",
    "nps_promoters", "nps_passives", "nps_detractors", "csat_satisfied", "csat_total", "ces_sum", "ces_count",
    "tickets_opened", "tickets_resolved", "resolution_ms_sum", "emails_sent", "emails_opened", "emails_clicked",
    "emails_bounced", "emails_unsubscribed", "late_events",
)


def _ratio(num: float | int | None, den: float | int | None, scale: float = 1.0) -> float | None:
    if not den or num is None:
        return None
    return float(num) * scale / float(den)


def _plain(value: Any) -> Any:
    """JSON-friendly values: dates as ISO text, Decimal as float."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def _rows(client: Any, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=dict(parameters) if parameters else None)
    return [{k: _plain(v) for k, v in zip(result.column_names, row)} for row in result.result_rows]


def derive(c: Mapping[str, Any]) -> dict[str, Any]:
    """Ratios from additive components (never averages of averages). Rates are fractions 0-1, ``*_pct`` are
    percentages 0-100, ``nps`` is -100..100; each is None when its denominator is 0."""
    responses = c["nps_promoters"] + c["nps_passives"] + c["nps_detractors"]
    return {
        "conversion_rate": _ratio(c["checkouts_completed"], c["checkouts_started"]),
        "abandonment_rate": _ratio(c["checkouts_abandoned"], c["checkouts_started"]),
        "on_time_pct": _ratio(c["deliveries_on_time"], c["deliveries_on_time"] + c["deliveries_late"], 100.0),
        "nps_responses": responses,
        "nps": _ratio(c["nps_promoters"] - c["nps_detractors"], responses, 100.0),
        "csat_pct": _ratio(c["csat_satisfied"], c["csat_total"], 100.0),
        "ces_avg": _ratio(c["ces_sum"], c["ces_count"]),
        "avg_resolution_seconds": _ratio(c["resolution_ms_sum"], c["tickets_resolved"] * 1000),
        "open_rate": _ratio(c["emails_opened"], c["emails_sent"]),
        "ctr": _ratio(c["emails_clicked"], c["emails_sent"]),
        "click_to_open_rate": _ratio(c["emails_clicked"], c["emails_opened"]),
    }


def build_report(client: Any, database: str, *, funnel_window_days: float = 30.0, top: int = 10,
                 customer_params: Any = None, journey_options: Any = None) -> dict[str, Any]:
    """The report's numbers, as plain JSON-ready data. ``client`` is any clickhouse-connect client (chdb,
    a ClickHouse server, or the sink's read-only port). Keys (stable; add, never rename):

    - ``database``, ``generated_at`` (ISO UTC).
    - ``totals`` (raw touchpoints, FINAL; definitions in the module docstring): ``touchpoints``, ``customers``
      (distinct customer ids), ``anonymous_visitors``, ``ad_clicks``, ``ad_spend_minor`` {currency: minor units},
      ``checkouts_started|completed|abandoned|failed``, ``conversion_rate`` (completed / started, 0-1),
      ``abandonment_rate`` (0-1), ``revenue_minor`` {currency: minor units of completed checkouts},
      ``deliveries_delivered|on_time|late|failed``, ``delivery_delay_ms_sum``, ``on_time_pct`` (0-100),
      ``nps_promoters|passives|detractors``, ``nps_responses``, ``nps`` (-100..100), ``csat_satisfied``,
      ``csat_total``, ``csat_pct`` (0-100), ``ces_sum``, ``ces_count``, ``ces_avg``, ``tickets_opened``,
      ``tickets_resolved`` (tickets with an opened and a resolved step), ``resolution_ms_sum``,
      ``avg_resolution_seconds``, ``p90_resolution_seconds``, ``emails_sent|opened|clicked|bounced|unsubscribed``,
      ``open_rate``, ``ctr``, ``click_to_open_rate`` (0-1), ``identity_merges`` (distinct stitched anonymous ids).
    - ``revenue_minor`` and ``identity_merges``: the same as in ``totals``, at the top level.
    - ``totals_from_metrics``: the component counts and derived ratios recomputed from metric windows, plus
      ``late_events``.
    - ``funnel``: list of {``step``, ``label``, ``customers`` (identity-resolved people reaching the step in
      order within ``funnel_window_days``), ``pct_of_first``, ``pct_of_previous`` (0-100)}.
    - ``daily``: list per day of {``day``, ``touchpoints``, ``checkouts_started``, ``checkouts_completed``,
      ``conversion_rate``, ``abandonment_rate``, ``nps``, ``nps_responses``, ``csat_pct``, ``ces_avg``,
      ``on_time_pct``, ``open_rate``, ``ctr``, ``tickets_resolved``, ``avg_resolution_seconds``,
      ``p90_resolution_seconds``}.
    - ``top_paths``: list of {``path``, ``journeys``, ``converted_journeys``, ``conversion_pct``}.
    - ``campaigns``: list of {``campaign_id``, ``currency``, ``clicks``, ``spend_minor``,
      ``attributed_conversions``, ``attributed_revenue_minor``, ``conversion_rate`` (conversions / clicks, 0-1),
      ``cost_per_conversion_minor``}.
    - ``email_campaigns``: list of {``campaign_id``, ``sent``, ``opened``, ``clicked``, ``open_rate``, ``ctr``}
      (distinct emails per action).
    - ``customers``: churn, lifecycle, cohorts, sales cycle and at-risk sections
      (``report_customers.build_customer_report`` with ``customer_params``, a ``customers.CustomerParams``).
    - ``journey_funnel``, ``stages``, ``pain_points``, ``attribution``: see ``touchpoint.sinks.report_journeys``
      (``journey_options``: its ``JourneyOptions``, default the settings' defaults).
    """
    if not _IDENT.match(database):
        raise ConfigError(f"clickhouse_database={database!r} is not a plain identifier; set TOUCHPOINT_CLICKHOUSE_DATABASE")
    db = f"`{database}`"

    totals: dict[str, Any] = _rows(client, _RAW_TOTALS.format(db=db))[0]
    tickets = _rows(client, f"""
        SELECT countIf(has_opened) AS tickets_opened,
               countIf(has_opened AND has_resolved) AS tickets_resolved,
               toInt64(sumIf(dateDiff('millisecond', opened_at, resolved_at), has_opened AND has_resolved)) AS resolution_ms_sum,
               quantileExactIf(0.9)(dateDiff('millisecond', opened_at, resolved_at), has_opened AND has_resolved) / 1000 AS p90
        FROM ({_TICKETS.format(db=db)})""")[0]
    totals.update({k: tickets[k] for k in ("tickets_opened", "tickets_resolved", "resolution_ms_sum")})
    totals["ad_spend_minor"] = {r["currency"]: r["minor"] for r in _rows(client, f"""
        SELECT toString(currency) AS currency, toInt64(sum(cost_minor)) AS minor FROM {db}.touchpoints FINAL
        WHERE event_type = 'AD_CLICK' GROUP BY currency ORDER BY currency""")}
    revenue = {r["currency"]: r["minor"] for r in _rows(client, f"""
        SELECT toString(currency) AS currency, toInt64(sum(amount_minor)) AS minor FROM {db}.touchpoints FINAL
        WHERE event_type = 'CHECKOUT' AND checkout_status = 'completed' GROUP BY currency ORDER BY currency""")}
    totals["revenue_minor"] = revenue
    merges = _rows(client, f"SELECT uniqExact(anonymous_id) AS n FROM {db}.identity_merges")[0]["n"]
    totals["identity_merges"] = merges
    totals.update(derive(totals))
    totals["p90_resolution_seconds"] = tickets["p90"] if totals["tickets_resolved"] else None

    sums = ", ".join(f"toInt64(sum({c})) AS {c}" for c in _METRIC_COMPONENTS)
    from_metrics: dict[str, Any] = _rows(client, f"SELECT {sums} FROM {db}.metrics_minute_current")[0]
    from_metrics.update(derive(from_metrics))

    return {
        "database": database,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "totals": totals,
        "revenue_minor": revenue,
        "identity_merges": merges,
        "totals_from_metrics": from_metrics,
        "funnel": _funnel(client, db, funnel_window_days),
        "daily": _daily(client, db),
        "top_paths": _rows(client, f"""
            SELECT path, journeys, converted_journeys, conversion_pct FROM {db}.journey_paths
            ORDER BY journeys DESC, path LIMIT {int(top)}"""),
        "campaigns": _campaigns(client, db),
        "email_campaigns": _rows(client, f"""
            SELECT campaign_id,
                   uniqExactIf(message_id, email_action = 'sent') AS sent,
                   uniqExactIf(message_id, email_action = 'opened') AS opened,
                   uniqExactIf(message_id, email_action = 'clicked') AS clicked,
                   if(sent = 0, NULL, opened / sent) AS open_rate,
                   if(sent = 0, NULL, clicked / sent) AS ctr
            FROM {db}.touchpoints WHERE event_type = 'EMAIL_ENGAGEMENT'
            GROUP BY campaign_id ORDER BY sent DESC, campaign_id LIMIT {int(top)}"""),
        "customers": _customer_sections(client, database, customer_params),
        **_journey_sections(client, database, journey_options),
    }


def _customer_sections(client: Any, database: str, params: Any) -> dict[str, Any]:
    from touchpoint.sinks.report_customers import build_customer_report

    return build_customer_report(client, database, params)


def _journey_sections(client: Any, database: str, options: Any) -> dict[str, Any]:
    from touchpoint.sinks.report_journeys import journey_sections

    return journey_sections(client, database, options)


def _funnel(client: Any, db: str, window_days: float) -> list[dict[str, Any]]:
    conditions = ", ".join(cond for _, _, cond in FUNNEL_STEPS)
    levels = _rows(client, f"""
        SELECT level, count() AS people FROM (
            SELECT resolved_id,
                   windowFunnel({{window:UInt64}})(toUInt64(toUnixTimestamp64Milli(occurred_at)), {conditions}) AS level
            FROM {db}.touchpoints_resolved GROUP BY resolved_id)
        GROUP BY level""", {"window": int(window_days * 86_400_000)})
    at_level = {int(r["level"]): int(r["people"]) for r in levels}
    steps: list[dict[str, Any]] = []
    for i, (key, label, _) in enumerate(FUNNEL_STEPS, start=1):
        reached = sum(n for level, n in at_level.items() if level >= i)
        first = steps[0]["customers"] if steps else reached
        previous = steps[-1]["customers"] if steps else reached
        steps.append({"step": key, "label": label, "customers": reached,
                      "pct_of_first": _ratio(reached, first, 100.0), "pct_of_previous": _ratio(reached, previous, 100.0)})
    return steps


def _daily(client: Any, db: str) -> list[dict[str, Any]]:
    kpis = _rows(client, f"""
        SELECT day, touchpoints, checkouts_started, checkouts_completed, checkouts_abandoned, deliveries_on_time,
               deliveries_late, nps_promoters, nps_passives, nps_detractors, csat_satisfied, csat_total, ces_sum,
               ces_count, tickets_resolved, resolution_ms_sum, emails_sent, emails_opened, emails_clicked
        FROM {db}.kpi_day ORDER BY day""")
    resolution = {r["day"]: r for r in _rows(client, f"""
        SELECT toDate(resolved_at) AS day, count() AS tickets,
               avg(dateDiff('millisecond', opened_at, resolved_at)) / 1000 AS avg_s,
               quantileExact(0.9)(dateDiff('millisecond', opened_at, resolved_at)) / 1000 AS p90_s
        FROM ({_TICKETS.format(db=db)}) WHERE has_opened AND has_resolved GROUP BY day""")}
    out = []
    for k in kpis:
        d = derive(k)
        r = resolution.get(k["day"], {})
        out.append({
            "day": k["day"], "touchpoints": k["touchpoints"], "checkouts_started": k["checkouts_started"],
            "checkouts_completed": k["checkouts_completed"], "conversion_rate": d["conversion_rate"],
            "abandonment_rate": d["abandonment_rate"], "nps": d["nps"], "nps_responses": d["nps_responses"],
            "csat_pct": d["csat_pct"], "ces_avg": d["ces_avg"], "on_time_pct": d["on_time_pct"],
            "open_rate": d["open_rate"], "ctr": d["ctr"], "tickets_resolved": r.get("tickets", 0),
            "avg_resolution_seconds": r.get("avg_s"), "p90_resolution_seconds": r.get("p90_s"),
        })
    return out


def _campaigns(client: Any, db: str) -> list[dict[str, Any]]:
    rows = _rows(client, f"""
        SELECT campaign_id, toString(currency) AS currency, toInt64(sum(ad_clicks)) AS clicks,
               toInt64(sum(ad_spend_minor)) AS spend_minor, toInt64(sum(attributed_conversions)) AS attributed_conversions,
               toInt64(sum(attributed_revenue_minor)) AS attributed_revenue_minor
        FROM {db}.campaign_performance GROUP BY campaign_id, currency
        ORDER BY attributed_conversions DESC, clicks DESC, campaign_id""")
    for r in rows:
        r["conversion_rate"] = _ratio(r["attributed_conversions"], r["clicks"])
        r["cost_per_conversion_minor"] = _ratio(r["spend_minor"], r["attributed_conversions"])
    return rows


# ---- formatting shared by the renderers (rich in ``touchpoint report``, HTML in ``report_html``) ------------

NO_DATA = "—"


def format_number(value: Any, digits: int = 1, suffix: str = "") -> str:
    """A figure for people: thousands separators, ``digits`` decimals for floats, ``—`` when there is no data."""
    if value is None:
        return NO_DATA
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value:,}{suffix}"


def format_rate(rate: float | None) -> str:
    """A 0-1 rate as a percentage with one decimal (``0.25`` → ``25.0%``), ``—`` when there is no data."""
    return NO_DATA if rate is None else f"{rate * 100:,.1f}%"


def format_minor(amount: float | None) -> str:
    """An amount in minor units (cents) as major units with two decimals (``1234`` → ``12.34``)."""
    return NO_DATA if amount is None else f"{amount / 100:,.2f}"


def format_money(by_currency: Mapping[str, int]) -> str:
    """Amounts per currency in minor units, ``{"EUR": 1234}`` → ``12.34 EUR``; ``—`` when there are none."""
    return ", ".join(f"{format_minor(amount)} {currency}" for currency, amount in by_currency.items()) or NO_DATA
