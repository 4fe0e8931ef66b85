"""Customers, churn, lifecycle, retention cohorts, at-risk list and sales cycle: parameterised read-only queries.

Every query reads the plain views of ``ddl/0003_customers.sql`` (``customer_activity``, ``customers``,
``sales_cycles``, ``customer_experiences``), which read ``touchpoints_resolved`` (touchpoints ``FINAL`` + the
newest identity merge per anonymous id), so a replayed or duplicated event counts once and an anonymous history
belongs to the customer it was stitched to. Ratios are computed here from the additive components the queries
return (counts, sums), never averaged.

Definitions (also in sinks/README.md), with N = ``inactivity_days`` and "activity" = customer-initiated
touchpoints (every touchpoint except e-mails we sent or that bounced, and carrier notices) or, with ``activity="purchase"``, completed
checkouts only:

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
from typing import Any

from touchpoint.errors import ConfigError

PERIODS = ("month", "week")
ACTIVITIES = ("any", "purchase")
COHORT_BASES = ("purchase", "touch")
BREAKDOWNS = ("campaign", "channel", "platform")
SIGNALS_BAD = ("nps_detractor", "csat_dissatisfied", "delivery_late", "delivery_failed", "ticket_unresolved")
DAY_MS = 86_400_000

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# start of the period containing a date/time, n periods later, whole periods between two period starts
_START = {"month": "toStartOfMonth({})", "week": "toMonday({})"}
_ADD = {"month": "addMonths({}, {})", "week": "addWeeks({}, {})"}
_DIFF = {"month": "dateDiff('month', {}, {})", "week": "intDiv(dateDiff('day', {}, {}), 7)"}
_BUCKETS: tuple[tuple[str, int], ...] = (
    ("< 1 h", 3_600_000), ("1 h - 1 d", DAY_MS), ("1 - 7 d", 7 * DAY_MS), ("7 - 30 d", 30 * DAY_MS),
    ("30 - 90 d", 90 * DAY_MS), ("≥ 90 d", 2**62),
)


class CustomerQueryError(ConfigError):
    """A parameter of a customer query is outside its valid values (the message names it and them)."""


def _choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise CustomerQueryError(f"{name}={value!r} is not valid; use one of: {', '.join(valid)}")
    return value


@dataclass(frozen=True)
class CustomerParams:
    """The knobs of the customer queries; defaults come from Settings (``customer_params(settings)``)."""

    period: str = "month"
    inactivity_days: float = 90.0
    activity: str = "any"
    quiet_share: float = 0.5
    as_of_ms: int | None = None

    def __post_init__(self) -> None:
        _choice("period", self.period, PERIODS)
        _choice("activity", self.activity, ACTIVITIES)
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


def _db(database: str) -> str:
    if not _IDENT.match(database):
        raise ConfigError(f"clickhouse_database={database!r} is not a plain identifier; set TOUCHPOINT_CLICKHOUSE_DATABASE")
    return f"`{database}`"


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def _rows(client: Any, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=dict(parameters) if parameters else None)
    return [dict(zip(result.column_names, row)) for row in result.result_rows]


def _ratio(num: float | int | None, den: float | int | None) -> float | None:
    return None if not den or num is None else float(num) / float(den)


def resolve_as_of(client: Any, database: str, params: CustomerParams) -> int | None:
    """``params.as_of_ms``, else the newest stored touchpoint's time (None: the store holds no touchpoint)."""
    if params.as_of_ms is not None:
        return params.as_of_ms
    row = _rows(client, f"SELECT count() AS n, toInt64(toUnixTimestamp64Milli(max(occurred_at))) AS ms FROM {_db(database)}.touchpoints")[0]
    return int(row["ms"]) if row["n"] else None


def period_starts(period: str, first: dt.date, last: dt.date) -> list[dt.date]:
    """Every period start from the one containing ``first`` to the one containing ``last``."""
    _choice("period", period, PERIODS)
    out: list[dt.date] = []
    if period == "month":
        d = first.replace(day=1)
        while d <= last:
            out.append(d)
            d = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    else:
        d = first - dt.timedelta(days=first.weekday())
        while d <= last:
            out.append(d)
            d += dt.timedelta(days=7)
    return out


def _as_date(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date()


def _activity_filter(params: CustomerParams) -> str:
    return "occurred_at <= fromUnixTimestamp64Milli({as_of:Int64}, 'UTC')" + (
        " AND is_purchase" if params.activity == "purchase" else "")


def _spells(db: str, params: CustomerParams) -> str:
    """One row per spell: customer_id, spell_start_ms, spell_end_ms (= last activity of the spell + N days)."""
    return f"""
        SELECT customer_id, spell.1 AS spell_start_ms, spell.2 AS spell_end_ms FROM (
            SELECT customer_id,
                   arraySort(groupArray(toUnixTimestamp64Milli(occurred_at))) AS t,
                   arrayDifference(t) AS gap,
                   arrayFilter((x, i) -> i = 1 OR gap[i] > {{gap:Int64}}, t, arrayEnumerate(t)) AS starts,
                   arrayMap(x -> x + {{gap:Int64}},
                            arrayFilter((x, i) -> i = length(t) OR t[i + 1] - x > {{gap:Int64}}, t, arrayEnumerate(t))) AS ends
            FROM {db}.customer_activity WHERE {_activity_filter(params)}
            GROUP BY customer_id)
        ARRAY JOIN arrayZip(starts, ends) AS spell"""


def _date_of(ms_expr: str) -> str:
    return f"fromUnixTimestamp64Milli({ms_expr}, 'UTC')"


def churn(client: Any, database: str, params: CustomerParams) -> list[dict[str, Any]]:
    """Per period from the first activity to ``as_of``: ``period_start``, ``active_at_start``, ``churned``,
    ``retained``, ``churn_rate`` / ``retention_rate`` (0-1, None when nobody was active at the start),
    ``new_customers`` (first activity in the period, not in the denominator), ``unsubscribed`` (customers whose
    first e-mail unsubscribe falls in the period: an explicit signal, reported beside churn, not in it),
    ``complete`` (False for the period holding ``as_of``)."""
    db = _db(database)
    as_of = resolve_as_of(client, database, params)
    if as_of is None:
        return []
    p = params.period
    start, add, diff = _START[p], _ADD[p], _DIFF[p]
    args = {"as_of": as_of, "gap": params.gap_ms}
    spells = _rows(client, f"""
        SELECT period_start, toInt64(count()) AS active_at_start,
               toInt64(countIf(spell_end_ms < next_ms AND spell_end_ms <= {{as_of:Int64}})) AS churned
        FROM (
            SELECT spell_end_ms,
                   {start.format(_date_of('spell_start_ms'))} AS first_p,
                   arrayJoin(range(1, toUInt64(greatest(0, {diff.format('first_p', start.format(_date_of('least(spell_end_ms, {as_of:Int64})')))}) + 1))) AS k,
                   {add.format('first_p', 'k')} AS period_start,
                   toInt64(toUnixTimestamp(toDateTime({add.format('first_p', 'k + 1')}, 'UTC'))) * 1000 AS next_ms
            FROM ({_spells(db, params)}))
        GROUP BY period_start""", args)
    new = _rows(client, f"""
        SELECT {start.format('first_at')} AS period_start, toInt64(count()) AS n FROM (
            SELECT customer_id, min(occurred_at) AS first_at FROM {db}.customer_activity
            WHERE {_activity_filter(params)} GROUP BY customer_id)
        GROUP BY period_start""", args)
    unsubscribed = _rows(client, f"""
        SELECT {start.format('first_at')} AS period_start, toInt64(count()) AS n FROM (
            SELECT resolved_id, min(occurred_at) AS first_at FROM {db}.touchpoints_resolved
            WHERE email_action = 'unsubscribed' AND occurred_at <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC')
            GROUP BY resolved_id)
        GROUP BY period_start""", args)
    first = min([r["period_start"] for r in new], default=None)
    if first is None:
        return []
    by_start = {r["period_start"]: r for r in spells}
    new_by = {r["period_start"]: r["n"] for r in new}
    unsub_by = {r["period_start"]: r["n"] for r in unsubscribed}
    as_of_date = _as_date(as_of)
    starts = period_starts(p, first, as_of_date)
    out = []
    for i, s in enumerate(starts):
        r = by_start.get(s, {"active_at_start": 0, "churned": 0})
        active, churned = int(r["active_at_start"]), int(r["churned"])
        out.append({"period_start": s.isoformat(), "active_at_start": active, "churned": churned,
                    "retained": active - churned, "churn_rate": _ratio(churned, active),
                    "retention_rate": _ratio(active - churned, active), "new_customers": int(new_by.get(s, 0)),
                    "unsubscribed": int(unsub_by.get(s, 0)), "complete": i < len(starts) - 1})
    return out


LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")


def lifecycle(client: Any, database: str, params: CustomerParams) -> list[dict[str, Any]]:
    """Per period: ``period_start`` and the number of customers ``new``, ``returning``, ``resurrecting``,
    ``dormant`` (definitions in the module docstring), plus ``active`` = new + returning + resurrecting."""
    db = _db(database)
    as_of = resolve_as_of(client, database, params)
    if as_of is None:
        return []
    p = params.period
    start, add = _START[p], _ADD[p]
    rows = _rows(client, f"""
        SELECT row.1 AS period_start, row.2 AS status, toInt64(count()) AS customers FROM (
            SELECT customer_id, arraySort(groupUniqArray({start.format('occurred_at')})) AS ps,
                   arrayMap((q, i) -> (q, multiIf(i = 1, 'new', ps[i - 1] = {add.format('q', '-1')}, 'returning', 'resurrecting')),
                            ps, arrayEnumerate(ps)) AS active_rows,
                   arrayMap(q -> ({add.format('q', '1')}, 'dormant'),
                            arrayFilter((q, i) -> (i = length(ps) OR ps[i + 1] != {add.format('q', '1')})
                                                  AND {add.format('q', '1')} <= {start.format(_date_of('{as_of:Int64}'))},
                                        ps, arrayEnumerate(ps))) AS dormant_rows
            FROM {db}.customer_activity WHERE {_activity_filter(params)}
            GROUP BY customer_id)
        ARRAY JOIN arrayConcat(active_rows, dormant_rows) AS row
        GROUP BY period_start, status""", {"as_of": as_of})
    if not rows:
        return []
    counts: dict[dt.date, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r["period_start"], {})[r["status"]] = int(r["customers"])
    out = []
    for s in period_starts(p, min(counts), _as_date(as_of)):
        c = counts.get(s, {})
        entry: dict[str, Any] = {"period_start": s.isoformat(), **{k: c.get(k, 0) for k in LIFECYCLE_STATUSES}}
        entry["active"] = entry["new"] + entry["returning"] + entry["resurrecting"]
        out.append(entry)
    return out


def cohorts(client: Any, database: str, params: CustomerParams, *, cohort_by: str = "purchase",
            returning: str = "purchase") -> dict[str, Any]:
    """Retention cohorts. ``cohort_by``: ``purchase`` (first completed purchase) or ``touch`` (first activity);
    ``returning``: what counts as coming back, ``purchase`` or ``any`` activity. Returns
    ``{"period", "cohort_by", "returning", "repeat_customers", "buyers", "repeat_purchase_rate", "cohorts": [...]}``;
    each cohort: ``cohort`` (period start), ``customers``, ``repeat_customers`` (2+ completed purchases),
    ``repeat_purchase_rate``, ``retention``: per offset k from 0 to ``as_of``'s period {``offset``, ``on``,
    ``on_or_after``, ``on_rate``, ``on_or_after_rate``}, ``revenue_minor``: per offset {currency: minor units}."""
    _choice("cohort_by", cohort_by, COHORT_BASES)
    _choice("returning", returning, ACTIVITIES)
    db = _db(database)
    as_of = resolve_as_of(client, database, params)
    p = params.period
    start, diff = _START[p], _DIFF[p]
    result: dict[str, Any] = {"period": p, "cohort_by": cohort_by, "returning": returning, "cohorts": []}
    if as_of is None:
        result.update(repeat_customers=0, buyers=0, repeat_purchase_rate=None)
        return result
    cohort_of = "minIf(occurred_at, is_purchase)" if cohort_by == "purchase" else "min(occurred_at)"
    member = "countIf(is_purchase) > 0" if cohort_by == "purchase" else "1"
    came_back = "is_purchase" if returning == "purchase" else "1"
    members = f"""
        SELECT customer_id, {start.format(cohort_of)} AS cohort, countIf(is_purchase) AS purchases,
               arrayFilter(q -> q >= cohort, groupUniqArrayIf({start.format('occurred_at')}, {came_back})) AS ps
        FROM {db}.customer_activity WHERE occurred_at <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC')
        GROUP BY customer_id HAVING {member}"""
    args = {"as_of": as_of}
    sizes = _rows(client, f"""
        SELECT cohort, toInt64(count()) AS customers, toInt64(countIf(purchases >= 2)) AS repeat_customers,
               toInt64(countIf(purchases >= 1)) AS buyers
        FROM ({members}) GROUP BY cohort ORDER BY cohort""", args)
    retention = _rows(client, f"""
        SELECT cohort, k AS offset, toInt64(countIf(has(offsets, k))) AS on_, toInt64(count()) AS on_or_after FROM (
            SELECT cohort, arrayMap(q -> toUInt64({diff.format('cohort', 'q')}), ps) AS offsets FROM ({members})
            WHERE notEmpty(ps))
        ARRAY JOIN range(arrayMax(offsets) + 1) AS k
        GROUP BY cohort, k""", args)
    revenue = _rows(client, f"""
        SELECT m.cohort AS cohort, toUInt64({diff.format('m.cohort', start.format('a.occurred_at'))}) AS offset,
               a.currency AS currency, toInt64(sum(a.amount_minor)) AS minor
        FROM {db}.customer_activity AS a
        INNER JOIN ({members}) AS m ON a.customer_id = m.customer_id
        WHERE a.is_purchase AND a.occurred_at <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC')
          AND {start.format('a.occurred_at')} >= m.cohort
        GROUP BY cohort, offset, currency""", args)
    ret = {(r["cohort"], int(r["offset"])): r for r in retention}
    rev: dict[tuple[dt.date, int], dict[str, int]] = {}
    for r in revenue:
        rev.setdefault((r["cohort"], int(r["offset"])), {})[r["currency"]] = int(r["minor"])
    last = _as_date(as_of)
    for s in sizes:
        size = int(s["customers"])
        offsets = len(period_starts(p, s["cohort"], last))
        entries = []
        for k in range(offsets):
            r = ret.get((s["cohort"], k), {"on_": 0, "on_or_after": 0})
            entries.append({"offset": k, "on": int(r["on_"]), "on_or_after": int(r["on_or_after"]),
                            "on_rate": _ratio(r["on_"], size), "on_or_after_rate": _ratio(r["on_or_after"], size)})
        result["cohorts"].append({
            "cohort": s["cohort"].isoformat(), "customers": size, "repeat_customers": int(s["repeat_customers"]),
            "repeat_purchase_rate": _ratio(s["repeat_customers"], s["buyers"]), "retention": entries,
            "revenue_minor": [dict(sorted(rev.get((s["cohort"], k), {}).items())) for k in range(offsets)],
        })
    totals = _rows(client, f"""
        SELECT toInt64(countIf(n >= 2)) AS repeat_customers, toInt64(count()) AS buyers FROM (
            SELECT customer_id, count() AS n FROM {db}.customer_activity
            WHERE is_purchase AND occurred_at <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC') GROUP BY customer_id)""", args)[0]
    result.update(repeat_customers=int(totals["repeat_customers"]), buyers=int(totals["buyers"]),
                  repeat_purchase_rate=_ratio(totals["repeat_customers"], totals["buyers"]))
    return result


def _cycle_stats(row: Mapping[str, Any]) -> dict[str, Any]:
    n = int(row["customers"])
    return {"customers": n, "cycle_ms_sum": int(row["cycle_ms_sum"]),
            "avg_ms": _ratio(row["cycle_ms_sum"], n), "median_ms": row["median_ms"] if n else None,
            "p90_ms": row["p90_ms"] if n else None}


def sales_cycle(client: Any, database: str, *, by: str | None = None) -> dict[str, Any]:
    """Sales-cycle length. ``customer_level``: {customers, cycle_ms_sum, avg_ms, median_ms, p90_ms} over the
    ``sales_cycles`` view; ``by`` (``campaign``, ``channel`` or ``platform`` of the first touch): the same per value
    (``""`` = the first touch had none) under ``breakdown``; ``distribution``: customers per duration bucket;
    ``journey_level``: the same stats over converted current journeys' ``time_to_convert_ms``."""
    db = _db(database)
    stats = "toInt64(count()) AS customers, toInt64(sum({v})) AS cycle_ms_sum, " \
            "quantileExactInclusive(0.5)({v}) AS median_ms, quantileExactInclusive(0.9)({v}) AS p90_ms"
    overall = _rows(client, f"SELECT {stats.format(v='cycle_ms')} FROM {db}.sales_cycles")[0]
    journeys = _rows(client, f"""
        SELECT {stats.format(v='assumeNotNull(time_to_convert_ms)')} FROM {db}.journeys_current
        WHERE converted AND time_to_convert_ms IS NOT NULL""")[0]
    bounds = [b for _, b in _BUCKETS]
    bucket_rows = _rows(client, f"""
        SELECT arrayFirstIndex(b -> cycle_ms < b, {bounds}) AS bucket, toInt64(count()) AS customers
        FROM {db}.sales_cycles GROUP BY bucket""")
    per_bucket = {int(r["bucket"]): int(r["customers"]) for r in bucket_rows}
    out: dict[str, Any] = {
        "customer_level": _cycle_stats(overall),
        "journey_level": _cycle_stats(journeys),
        "distribution": [{"bucket": label, "customers": per_bucket.get(i, 0)} for i, (label, _) in enumerate(_BUCKETS, 1)],
    }
    if by is not None:
        _choice("by", by, BREAKDOWNS)
        rows = _rows(client, f"""
            SELECT first_touch_{by} AS value, {stats.format(v='cycle_ms')} FROM {db}.sales_cycles
            GROUP BY value ORDER BY customers DESC, value""")
        out["by"] = by
        out["breakdown"] = [{"value": r["value"], **_cycle_stats(r)} for r in rows]
    return out


def at_risk(client: Any, database: str, params: CustomerParams, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Customers at risk now (definition in the module docstring), highest revenue first: ``customer_id``,
    ``is_identified``, ``reason`` (the bad signal), ``reason_at``, ``last_active_at``, ``quiet_days``, ``orders``,
    ``revenue_minor`` {currency: minor}, ``revenue_total_minor`` (sort key), ``unsubscribed``."""
    db = _db(database)
    as_of = resolve_as_of(client, database, params)
    if as_of is None:
        return []
    rows = _rows(client, f"""
        SELECT c.customer_id AS customer_id, c.is_identified AS is_identified, e.signal AS reason, e.at AS reason_at,
               a.last_active_at AS last_active_at,
               ({{as_of:Int64}} - toUnixTimestamp64Milli(a.last_active_at)) / 86400000 AS quiet_days,
               c.orders AS orders, c.revenue_minor AS revenue_minor,
               toInt64(arraySum(mapValues(c.revenue_minor))) AS revenue_total_minor, c.unsubscribed AS unsubscribed
        FROM (
            SELECT customer_id, argMax(signal, (occurred_at, event_id)) AS signal,
                   argMax(is_bad, (occurred_at, event_id)) AS bad, max(occurred_at) AS at
            FROM {db}.customer_experiences WHERE occurred_at <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC')
            GROUP BY customer_id HAVING bad) AS e
        INNER JOIN (
            SELECT customer_id, max(occurred_at) AS last_active_at FROM {db}.customer_activity
            WHERE {_activity_filter(params)} GROUP BY customer_id
            HAVING {{as_of:Int64}} - toUnixTimestamp64Milli(last_active_at) >= {{quiet:Int64}}
               AND {{as_of:Int64}} - toUnixTimestamp64Milli(last_active_at) < {{gap:Int64}}) AS a
            ON a.customer_id = e.customer_id
        INNER JOIN {db}.customers AS c ON c.customer_id = e.customer_id
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
    db = _db(database)
    rows = _rows(client, f"""
        SELECT {', '.join(CUSTOMER_COLUMNS)} FROM {db}.customers
        ORDER BY arraySum(mapValues(revenue_minor)) DESC, orders DESC, customer_id
        {'LIMIT {limit:UInt64}' if limit else ''}""", {"limit": limit} if limit else None)
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


def customer_summary(client: Any, database: str) -> dict[str, Any]:
    """Headline counts: ``customers`` (resolved), ``identified``, ``buyers``, ``repeat_buyers``,
    ``repeat_purchase_rate``, ``unsubscribed``."""
    r = _rows(client, f"""
        SELECT toInt64(count()) AS customers, toInt64(countIf(is_identified)) AS identified,
               toInt64(countIf(orders > 0)) AS buyers, toInt64(countIf(orders >= 2)) AS repeat_buyers,
               toInt64(countIf(unsubscribed)) AS unsubscribed
        FROM {_db(database)}.customers""")[0]
    out = {k: int(v) for k, v in r.items()}
    out["repeat_purchase_rate"] = _ratio(out["repeat_buyers"], out["buyers"])
    return out
