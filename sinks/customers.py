"""Customers, at-risk list and sales cycle (here) and churn, lifecycle, cohorts (``customer_periods``): read-only
parameterised queries over identity-resolved customers, and the definitions they share.

Every query reads the plain views of ``ddl/0003_customers.sql`` (``customer_activity``, ``customers``,
``sales_cycles``, ``customer_experiences``), which read ``touchpoints_resolved`` (touchpoints ``FINAL`` + the
newest identity merge per anonymous id), so a replayed or duplicated event counts once and an anonymous history
belongs to the customer it was stitched to. Ratios are computed here from the additive components the queries
return (counts, sums), never averaged.

Definitions (also in sinks/README.md), with N = ``inactivity_days`` and "activity" = customer-initiated
touchpoints (every touchpoint except e-mails we sent or that bounced, and carrier notices) or, with
``activity="purchase"``, completed checkouts only:

- **spell**: a customer is active from an activity until N days after their last activity; activities less than
  or exactly N days apart belong to one spell. The spell's end (last activity + N days) is the **churn moment**.
- **active at the start** of a period starting at ``s``: in a spell that began before ``s`` and ends at or after
  ``s`` (so new customers of the period, and customers coming back during it, are not in the denominator).
- **churned in the period**: active at its start, and that spell ends inside the period (at or before ``as_of``).
  churn rate = churned / active at start; retention = 1 - churn rate.
- **lifecycle** (PostHog's): for a period with activity, *new* (first activity ever), *returning* (also active in
  the previous period) or *resurrecting* (not active in the previous period); *dormant*: active in the previous
  period, not in this one.
- **cohorts**: customers by the period of their first completed purchase (or first activity); at offset k,
  "on" = active in period cohort+k, "on or after" = active in cohort+k or any later period.
- **at risk**: the customer's newest experience signal is bad (NPS detractor, CSAT in the bottom two answers,
  late or failed delivery, a ticket opened/reopened and not resolved since) and they have been quiet (no activity)
  for at least ``quiet_share`` x N days but less than N days (not churned yet).
- **sales cycle** (customer level): first touchpoint of any kind, anonymous history included -> first completed
  checkout. Journey level: the worker's ``time_to_convert_ms`` of converted current journeys (first touch of the
  journey, which restarts after ``journey_inactivity_days`` -> its conversion). Median and p90 are exact,
  linearly interpolated between the two nearest values (``quantileExactInclusive``, numpy's default method).

``as_of`` (epoch ms) defaults to the newest stored touchpoint, so figures do not drift while the store is idle;
activity after ``as_of`` is ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, get_args

from touchpoint.config import Settings
from touchpoint.errors import ConfigError

PERIODS = ("month", "week")
ACTIVITIES: tuple[str, ...] = get_args(Settings.model_fields["churn_activity"].annotation)  # one source: the setting
COHORT_BASES = ("purchase", "touch")
BREAKDOWNS = ("campaign", "channel", "platform")
DAY_MS = 86_400_000

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BUCKETS: tuple[tuple[str, int], ...] = (
    ("< 1 h", 3_600_000), ("1 h - 1 d", DAY_MS), ("1 - 7 d", 7 * DAY_MS), ("7 - 30 d", 30 * DAY_MS),
    ("30 - 90 d", 90 * DAY_MS), ("≥ 90 d", 2**62),
)


class CustomerQueryError(ConfigError):
    """A parameter of a customer query is outside its valid values (the message names it and them)."""


def check_choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise CustomerQueryError(f"{name}={value!r} is not valid; use one of: {', '.join(valid)}")
    return value


@dataclass(frozen=True)
class CustomerParams:
    """The knobs of the customer queries; defaults come from Settings (``customer_params(settings)``)."""

    period: str = "month"
    inactivity_days: float = Settings.model_fields["churn_inactivity_days"].default
    activity: str = Settings.model_fields["churn_activity"].default
    quiet_share: float = Settings.model_fields["at_risk_quiet_share"].default
    as_of_ms: int | None = None

    def __post_init__(self) -> None:
        check_choice("period", self.period, PERIODS)
        check_choice("activity", self.activity, ACTIVITIES)
        if not self.inactivity_days > 0:
            raise CustomerQueryError(f"inactivity_days={self.inactivity_days!r} must be a positive number of days (e.g. 90)")
        if not 0 < self.quiet_share <= 1:
            raise CustomerQueryError(f"quiet_share={self.quiet_share!r} must be in (0, 1] (a share of inactivity_days)")

    @property
    def gap_ms(self) -> int:
        return int(round(self.inactivity_days * DAY_MS))

    @property
    def quiet_ms(self) -> int:
        return int(round(self.quiet_share * self.inactivity_days * DAY_MS))


def customer_params(settings: Any, **overrides: Any) -> CustomerParams:
    """CustomerParams from the settings' ``churn_*`` / ``at_risk_*`` fields, with explicit overrides (None = keep)."""
    base = CustomerParams(inactivity_days=settings.churn_inactivity_days, activity=settings.churn_activity,
                          quiet_share=settings.at_risk_quiet_share)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def quoted_database(database: str) -> str:
    if not _IDENT.match(database):
        raise ConfigError(f"clickhouse_database={database!r} is not a plain identifier; set TOUCHPOINT_CLICKHOUSE_DATABASE")
    return f"`{database}`"


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def query_rows(client: Any, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=dict(parameters) if parameters else None)
    return [dict(zip(result.column_names, row)) for row in result.result_rows]


def ratio(num: float | int | None, den: float | int | None) -> float | None:
    return None if not den or num is None else float(num) / float(den)


def resolve_as_of(client: Any, database: str, params: CustomerParams) -> int | None:
    """``params.as_of_ms``, else the newest stored touchpoint's time (None: the store holds no touchpoint)."""
    if params.as_of_ms is not None:
        return params.as_of_ms
    row = query_rows(client, f"SELECT count() AS n, toInt64(toUnixTimestamp64Milli(max(occurred_at))) AS ms FROM {quoted_database(database)}.touchpoints")[0]
    return int(row["ms"]) if row["n"] else None

def activity_filter(params: CustomerParams) -> str:
    return "occurred_at <= fromUnixTimestamp64Milli({as_of:Int64}, 'UTC')" + (
        " AND is_purchase" if params.activity == "purchase" else "")

def _cycle_stats(row: Mapping[str, Any]) -> dict[str, Any]:
    n = int(row["customers"])
    return {"customers": n, "cycle_ms_sum": int(row["cycle_ms_sum"]),
            "avg_ms": ratio(row["cycle_ms_sum"], n), "median_ms": row["median_ms"] if n else None,
            "p90_ms": row["p90_ms"] if n else None}


def sales_cycle(client: Any, database: str, *, by: str | None = None) -> dict[str, Any]:
    """Sales-cycle length. ``customer_level``: {customers, cycle_ms_sum, avg_ms, median_ms, p90_ms} over the
    ``sales_cycles`` view; ``by`` (``campaign``, ``channel`` or ``platform`` of the first touch): the same per value
    (``""`` = the first touch had none) under ``breakdown``; ``distribution``: customers per duration bucket;
    ``journey_level``: the same stats over converted current journeys' ``time_to_convert_ms``."""
    db = quoted_database(database)
    stats = "toInt64(count()) AS customers, toInt64(sum({v})) AS cycle_ms_sum, " \
            "quantileExactInclusive(0.5)({v}) AS median_ms, quantileExactInclusive(0.9)({v}) AS p90_ms"
    if by is not None:
        check_choice("by", by, BREAKDOWNS)
    key = f"first_touch_{by}"
    buckets = ", ".join(f"toInt64(countIf(cycle_ms >= {lo} AND cycle_ms < {hi})) AS b{i}"
                        for i, (lo, hi) in enumerate(zip((-2**62,) + tuple(b for _, b in _BUCKETS), (b for _, b in _BUCKETS))))
    # one scan: the overall row (grouping set ()) and one row per breakdown value
    grouped = (f"grouping({key}) = 1 AS overall, {key} AS value" if by else "true AS overall, '' AS value")
    rows = query_rows(client, f"""
        SELECT {grouped}, {stats.format(v='cycle_ms')}, {buckets}
        FROM {db}.sales_cycles {f'GROUP BY GROUPING SETS (({key}), ())' if by else ''}
        ORDER BY overall DESC, customers DESC, value""")
    overall = next((r for r in rows if r["overall"]), None)
    empty = {"customers": 0, "cycle_ms_sum": 0, "median_ms": None, "p90_ms": None}
    journeys = query_rows(client, f"""
        SELECT {stats.format(v='assumeNotNull(time_to_convert_ms)')} FROM {db}.journeys_current
        WHERE converted AND time_to_convert_ms IS NOT NULL""")[0]
    out: dict[str, Any] = {
        "customer_level": _cycle_stats(overall or empty),
        "journey_level": _cycle_stats(journeys),
        "distribution": [{"bucket": label, "customers": int(overall[f"b{i}"]) if overall else 0}
                         for i, (label, _) in enumerate(_BUCKETS)],
    }
    if by is not None:
        out["by"] = by
        out["breakdown"] = [{"value": r["value"], **_cycle_stats(r)} for r in rows if not r["overall"]]
    return out


def at_risk(client: Any, database: str, params: CustomerParams, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Customers at risk now (definition in the module docstring), highest revenue first: ``customer_id``,
    ``is_identified``, ``reason`` (the bad signal), ``reason_at``, ``last_active_at``, ``quiet_days``, ``orders``,
    ``revenue_minor`` {currency: minor}, ``revenue_total_minor`` (sort key), ``unsubscribed``."""
    db = quoted_database(database)
    as_of = resolve_as_of(client, database, params)
    if as_of is None:
        return []
    qualifying = "is_purchase" if params.activity == "purchase" else "1"
    # two scans: the newest experience signal per customer, and activity with the customer's orders and revenue
    rows = query_rows(client, f"""
        SELECT a.customer_id AS customer_id, a.is_identified AS is_identified, e.signal AS reason, e.at AS reason_at,
               a.last_active_at AS last_active_at,
               ({{as_of:Int64}} - toUnixTimestamp64Milli(a.last_active_at)) / 86400000 AS quiet_days,
               a.orders AS orders, a.revenue_minor AS revenue_minor,
               toInt64(arraySum(mapValues(a.revenue_minor))) AS revenue_total_minor, a.unsubscribed AS unsubscribed
        FROM (
            SELECT customer_id, argMax(signal, (occurred_at, event_id)) AS signal,
                   argMax(is_bad, (occurred_at, event_id)) AS bad, max(occurred_at) AS at
            FROM {db}.customer_experiences WHERE occurred_at <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC')
            GROUP BY customer_id HAVING bad) AS e
        INNER JOIN (
            SELECT customer_id, maxIf(occurred_at, {qualifying}) AS last_active_at, countIf({qualifying}) AS qualifying,
                   toInt64(countIf(is_purchase)) AS orders, sumMapIf(map(currency, amount_minor), is_purchase) AS revenue_minor,
                   max(is_identified) AS is_identified, countIf(is_unsubscribe) > 0 AS unsubscribed
            FROM {db}.customer_activity WHERE occurred_at <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC')
            GROUP BY customer_id
            HAVING qualifying > 0
               AND {{as_of:Int64}} - toUnixTimestamp64Milli(last_active_at) >= {{quiet:Int64}}
               AND {{as_of:Int64}} - toUnixTimestamp64Milli(last_active_at) < {{gap:Int64}}) AS a
            ON a.customer_id = e.customer_id
        ORDER BY revenue_total_minor DESC, reason_at DESC, customer_id
        {'LIMIT {limit:UInt64}' if limit else ''}""",
        {"as_of": as_of, "quiet": params.quiet_ms, "gap": params.gap_ms, **({"limit": limit} if limit else {})})
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


CUSTOMER_COLUMNS = ("customer_id", "is_identified", "first_touch_at", "last_touch_at", "first_purchase_at",
                    "last_purchase_at", "orders", "revenue_minor", "last_nps_score", "last_csat_score",
                    "support_contacts", "support_tickets", "unsubscribed", "unsubscribed_at", "first_touch_campaign",
                    "first_touch_channel", "first_touch_platform")


def customer_list(client: Any, database: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of the ``customers`` view, highest revenue first (all currencies summed for the order only)."""
    db = quoted_database(database)
    rows = query_rows(client, f"""
        SELECT {', '.join(CUSTOMER_COLUMNS)} FROM {db}.customers
        ORDER BY arraySum(mapValues(revenue_minor)) DESC, orders DESC, customer_id
        {'LIMIT {limit:UInt64}' if limit else ''}""", {"limit": limit} if limit else None)
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


def customer_summary(client: Any, database: str) -> dict[str, Any]:
    """Headline counts: ``customers`` (resolved), ``identified``, ``buyers``, ``repeat_buyers``,
    ``repeat_purchase_rate``, ``unsubscribed``."""
    r = query_rows(client, f"""
        SELECT toInt64(count()) AS customers, toInt64(countIf(is_identified)) AS identified,
               toInt64(countIf(orders > 0)) AS buyers, toInt64(countIf(orders >= 2)) AS repeat_buyers,
               toInt64(countIf(unsubscribed)) AS unsubscribed
        FROM {quoted_database(database)}.customers""")[0]
    out: dict[str, Any] = {k: int(v) for k, v in r.items()}
    out["repeat_purchase_rate"] = ratio(out["repeat_buyers"], out["buyers"])
    return out
