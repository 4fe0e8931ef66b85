"""Period figures over identity-resolved customers: churn, lifecycle and retention cohorts per month or week.

Definitions in ``touchpoint.sinks.customers`` (module docstring) and sinks/README.md; the parameters are a
``CustomerParams``. Each function scans ``customer_activity`` once or twice and returns the additive counts with
the ratios derived from them. Period starts are UTC dates (weeks start on Monday).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from touchpoint.sinks.customers import (
    ACTIVITIES, COHORT_BASES, PERIODS, CustomerParams, activity_filter, check_choice, query_rows, quoted_database, ratio,
    resolve_as_of,
)

# start of the period containing a date/time, n periods later, whole periods between two period starts
_START = {"month": "toStartOfMonth({})", "week": "toMonday({})"}
_ADD = {"month": "addMonths({}, {})", "week": "addWeeks({}, {})"}
_DIFF = {"month": "dateDiff('month', {}, {})", "week": "intDiv(dateDiff('day', {}, {}), 7)"}


def period_starts(period: str, first: dt.date, last: dt.date) -> list[dt.date]:
    """Every period start from the one containing ``first`` to the one containing ``last``."""
    check_choice("period", period, PERIODS)
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


def _date_of(ms_expr: str) -> str:
    return f"fromUnixTimestamp64Milli({ms_expr}, 'UTC')"


def churn(client: Any, database: str, params: CustomerParams) -> list[dict[str, Any]]:
    """Per period from the first activity to ``as_of``: ``period_start``, ``active_at_start``, ``churned``,
    ``retained``, ``churn_rate`` / ``retention_rate`` (0-1, None when nobody was active at the start),
    ``new_customers`` (first activity in the period, not in the denominator), ``unsubscribed`` (customers whose
    first e-mail unsubscribe falls in the period: an explicit signal, reported beside churn, not in it),
    ``complete`` (False for the period holding ``as_of``).

    One scan: per customer, the sorted activity times give the spells (a new spell where the gap exceeds N days;
    each ends N days after its last activity); every spell emits one row per period start it covers
    (start < s <= end, s <= as_of) marked 1 (active at s) or 2 (active at s and the spell ends before the next
    period, by ``as_of``), plus a row 3 at the customer's first activity and a row 4 at their first unsubscribe."""
    db = quoted_database(database)
    as_of = resolve_as_of(client, database, params)
    if as_of is None:
        return []
    p = params.period
    start, add, diff = _START[p], _ADD[p], _DIFF[p]
    qualifying = "is_purchase" if params.activity == "purchase" else "1"
    p0 = start.format(_date_of("st"))
    covered = f"range(1, toUInt64(greatest(0, {diff.format(p0, start.format(_date_of('least(en, {as_of:Int64})')))}) + 1))"
    next_ms = f"toInt64(toUnixTimestamp(toDateTime({add.format(p0, 'k + 1')}, 'UTC'))) * 1000"
    rows = query_rows(client, f"""
        SELECT row.1 AS period_start, toInt64(countIf(row.2 IN (1, 2))) AS active_at_start,
               toInt64(countIf(row.2 = 2)) AS churned, toInt64(countIf(row.2 = 3)) AS new_customers,
               toInt64(countIf(row.2 = 4)) AS unsubscribed
        FROM (
            SELECT customer_id,
                   arraySort(groupArrayIf(toUnixTimestamp64Milli(occurred_at), {qualifying})) AS t,
                   arrayDifference(t) AS gap,
                   arrayFilter((x, i) -> i = 1 OR gap[i] > {{gap:Int64}}, t, arrayEnumerate(t)) AS starts,
                   arrayMap(x -> x + {{gap:Int64}},
                            arrayFilter((x, i) -> i = length(t) OR t[i + 1] - x > {{gap:Int64}}, t, arrayEnumerate(t))) AS ends,
                   arrayConcat(
                       arrayFilter(x -> x.2 != 0,
                                   [({start.format(_date_of('t[1]'))}, toUInt8(if(empty(t), 0, 3))),
                                    ({start.format('minIf(occurred_at, is_unsubscribe)')}, toUInt8(if(countIf(is_unsubscribe) > 0, 4, 0)))]),
                       arrayFlatten(arrayMap((st, en) -> arrayMap(k -> ({add.format(p0, 'k')},
                                                                        toUInt8(if(en < {next_ms} AND en <= {{as_of:Int64}}, 2, 1))),
                                                                  {covered}),
                                             starts, ends))) AS marks
            FROM {db}.customer_activity
            WHERE occurred_at <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC') AND ({qualifying} OR is_unsubscribe)
            GROUP BY customer_id)
        ARRAY JOIN marks AS row
        GROUP BY period_start""", {"as_of": as_of, "gap": params.gap_ms})
    firsts = [r["period_start"] for r in rows if r["new_customers"]]
    if not firsts:
        return []
    by_start = {r["period_start"]: r for r in rows}
    starts = period_starts(p, min(firsts), _as_date(as_of))
    out = []
    for i, s in enumerate(starts):
        r = by_start.get(s, {"active_at_start": 0, "churned": 0, "new_customers": 0, "unsubscribed": 0})
        active, churned = int(r["active_at_start"]), int(r["churned"])
        out.append({"period_start": s.isoformat(), "active_at_start": active, "churned": churned,
                    "retained": active - churned, "churn_rate": ratio(churned, active),
                    "retention_rate": ratio(active - churned, active), "new_customers": int(r["new_customers"]),
                    "unsubscribed": int(r["unsubscribed"]), "complete": i < len(starts) - 1})
    return out


LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")


def lifecycle(client: Any, database: str, params: CustomerParams) -> list[dict[str, Any]]:
    """Per period: ``period_start`` and the number of customers ``new``, ``returning``, ``resurrecting``,
    ``dormant`` (definitions in the module docstring), plus ``active`` = new + returning + resurrecting."""
    db = quoted_database(database)
    as_of = resolve_as_of(client, database, params)
    if as_of is None:
        return []
    p = params.period
    start, add = _START[p], _ADD[p]
    rows = query_rows(client, f"""
        SELECT row.1 AS period_start, row.2 AS status, toInt64(count()) AS customers FROM (
            SELECT customer_id, arraySort(groupUniqArray({start.format('occurred_at')})) AS ps,
                   arrayMap((q, i) -> (q, multiIf(i = 1, 'new', ps[i - 1] = {add.format('q', '-1')}, 'returning', 'resurrecting')),
                            ps, arrayEnumerate(ps)) AS active_rows,
                   arrayMap(q -> ({add.format('q', '1')}, 'dormant'),
                            arrayFilter((q, i) -> (i = length(ps) OR ps[i + 1] != {add.format('q', '1')})
                                                  AND {add.format('q', '1')} <= {start.format(_date_of('{as_of:Int64}'))},
                                        ps, arrayEnumerate(ps))) AS dormant_rows
            FROM {db}.customer_activity WHERE {activity_filter(params)}
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
    check_choice("cohort_by", cohort_by, COHORT_BASES)
    check_choice("returning", returning, ACTIVITIES)
    db = quoted_database(database)
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
    # one row per member: cohort, purchase count, offsets of the periods they came back in, their purchases
    members = f"""
        SELECT customer_id, {start.format(cohort_of)} AS cohort, countIf(is_purchase) AS purchases,
               arrayMap(q -> toUInt64({diff.format('cohort', 'q')}),
                        arrayFilter(q -> q >= cohort, groupUniqArrayIf({start.format('occurred_at')}, {came_back}))) AS offsets,
               groupArrayIf(({start.format('occurred_at')}, currency, amount_minor), is_purchase) AS bought
        FROM {db}.customer_activity WHERE occurred_at <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC')
        GROUP BY customer_id HAVING {member}"""
    args = {"as_of": as_of}
    # every member has a row at offset 0 (cohort size, buyers, repeat buyers), and one per offset up to their last
    retention = query_rows(client, f"""
        SELECT cohort, k AS offset, toInt64(countIf(k = 0)) AS customers,
               toInt64(countIf(k = 0 AND purchases >= 2)) AS repeat_customers,
               toInt64(countIf(k = 0 AND purchases >= 1)) AS buyers,
               toInt64(countIf(has(offsets, k))) AS on_, toInt64(countIf(notEmpty(offsets) AND k <= arrayMax(offsets))) AS on_or_after
        FROM ({members})
        ARRAY JOIN range(toUInt64(if(empty(offsets), 0, arrayMax(offsets))) + 1) AS k
        GROUP BY cohort, k""", args)
    revenue = query_rows(client, f"""
        SELECT cohort, toUInt64({diff.format('cohort', 'b.1')}) AS offset, b.2 AS currency, toInt64(sum(b.3)) AS minor
        FROM ({members}) ARRAY JOIN bought AS b
        WHERE b.1 >= cohort
        GROUP BY cohort, offset, currency""", args)
    ret = {(r["cohort"], int(r["offset"])): r for r in retention}
    rev: dict[tuple[dt.date, int], dict[str, int]] = {}
    for r in revenue:
        rev.setdefault((r["cohort"], int(r["offset"])), {})[r["currency"]] = int(r["minor"])
    last = _as_date(as_of)
    repeat = buyers = 0
    for cohort in sorted({r["cohort"] for r in retention}):
        head = ret[(cohort, 0)]
        size = int(head["customers"])
        repeat += int(head["repeat_customers"])
        buyers += int(head["buyers"])
        offsets = len(period_starts(p, cohort, last))
        entries = []
        for k in range(offsets):
            r = ret.get((cohort, k), {"on_": 0, "on_or_after": 0})
            entries.append({"offset": k, "on": int(r["on_"]), "on_or_after": int(r["on_or_after"]),
                            "on_rate": ratio(r["on_"], size), "on_or_after_rate": ratio(r["on_or_after"], size)})
        result["cohorts"].append({
            "cohort": cohort.isoformat(), "customers": size, "repeat_customers": int(head["repeat_customers"]),
            "repeat_purchase_rate": ratio(head["repeat_customers"], head["buyers"]), "retention": entries,
            "revenue_minor": [dict(sorted(rev.get((cohort, k), {}).items())) for k in range(offsets)],
        })
    result.update(repeat_customers=repeat, buyers=buyers, repeat_purchase_rate=ratio(repeat, buyers))
    return result
