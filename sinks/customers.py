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
    db = _db(database)
    as_of = resolve_as_of(client, database, params)
    if as_of is None:
        return []
    p = params.period
    start, add, diff = _START[p], _ADD[p], _DIFF[p]
    qualifying = "is_purchase" if params.activity == "purchase" else "1"
    p0 = start.format(_date_of("st"))
    covered = f"range(1, toUInt64(greatest(0, {diff.format(p0, start.format(_date_of('least(en, {as_of:Int64})')))}) + 1))"
    next_ms = f"toInt64(toUnixTimestamp(toDateTime({add.format(p0, 'k + 1')}, 'UTC'))) * 1000"
    rows = _rows(client, f"""
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
                    "retained": active - churned, "churn_rate": _ratio(churned, active),
                    "retention_rate": _ratio(active - churned, active), "new_customers": int(r["new_customers"]),
                    "unsubscribed": int(r["unsubscribed"]), "complete": i < len(starts) - 1})
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
    retention = _rows(client, f"""
        SELECT cohort, k AS offset, toInt64(countIf(k = 0)) AS customers,
               toInt64(countIf(k = 0 AND purchases >= 2)) AS repeat_customers,
               toInt64(countIf(k = 0 AND purchases >= 1)) AS buyers,
               toInt64(countIf(has(offsets, k))) AS on_, toInt64(countIf(notEmpty(offsets) AND k <= arrayMax(offsets))) AS on_or_after
        FROM ({members})
        ARRAY JOIN range(toUInt64(if(empty(offsets), 0, arrayMax(offsets))) + 1) AS k
        GROUP BY cohort, k""", args)
    revenue = _rows(client, f"""
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
                            "on_rate": _ratio(r["on_"], size), "on_or_after_rate": _ratio(r["on_or_after"], size)})
        result["cohorts"].append({
            "cohort": cohort.isoformat(), "customers": size, "repeat_customers": int(head["repeat_customers"]),
            "repeat_purchase_rate": _ratio(head["repeat_customers"], head["buyers"]), "retention": entries,
            "revenue_minor": [dict(sorted(rev.get((cohort, k), {}).items())) for k in range(offsets)],
        })
    result.update(repeat_customers=repeat, buyers=buyers, repeat_purchase_rate=_ratio(repeat, buyers))
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
    if by is not None:
        _choice("by", by, BREAKDOWNS)
    key = f"first_touch_{by}"
    buckets = ", ".join(f"toInt64(countIf(cycle_ms >= {lo} AND cycle_ms < {hi})) AS b{i}"
                        for i, (lo, hi) in enumerate(zip((-2**62,) + tuple(b for _, b in _BUCKETS), (b for _, b in _BUCKETS))))
    # one scan: the overall row (grouping set ()) and one row per breakdown value
    grouped = (f"grouping({key}) = 1 AS overall, {key} AS value" if by else "true AS overall, '' AS value")
    rows = _rows(client, f"""
        SELECT {grouped}, {stats.format(v='cycle_ms')}, {buckets}
        FROM {db}.sales_cycles {f'GROUP BY GROUPING SETS (({key}), ())' if by else ''}
        ORDER BY overall DESC, customers DESC, value""")
    overall = next((r for r in rows if r["overall"]), None)
    empty = {"customers": 0, "cycle_ms_sum": 0, "median_ms": None, "p90_ms": None}
    journeys = _rows(client, f"""
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
    db = _db(database)
    as_of = resolve_as_of(client, database, params)
    if as_of is None:
        return []
    qualifying = "is_purchase" if params.activity == "purchase" else "1"
    # two scans: the newest experience signal per customer, and activity with the customer's orders and revenue
    rows = _rows(client, f"""
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
    out: dict[str, Any] = {k: int(v) for k, v in r.items()}
    out["repeat_purchase_rate"] = _ratio(out["repeat_buyers"], out["buyers"])
    return out
