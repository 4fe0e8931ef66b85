"""Ground truth of the customer figures (churn, lifecycle, cohorts, sales cycle, at risk), from generated events.

Computed here in plain Python from the deduplicated events, independently of the pipeline's SQL, with the
definitions the product documents (sinks/README.md, "Customers"):

- the customer is the person: ``customer_id``, else the customer an anonymous id appeared with on one event, else
  the anonymous id;
- activity = customer-initiated events (not e-mails sent or bounced, not carrier notices); a purchase = a completed
  checkout; activities at most N days apart form one spell, which ends N days after its last activity;
- churn per period: active at the start = in a spell that began before the start and ends at or after it; churned =
  those whose spell ends before the next period starts (and by ``as_of``);
- lifecycle: new / returning / resurrecting per active period, dormant the period after an active one;
- cohorts by first purchase period; "on" and "on or after" retention of purchases, revenue per offset, repeat buyers;
- sales cycle: first event of any kind -> first purchase; median / p90 linearly interpolated;
- at risk: newest experience signal bad, quiet for [quiet_share x N, N) days before ``as_of``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from touchpoint.producers.simulation.customers import Event
from touchpoint.producers.simulation.truth import dedup

DAY_MS = 86_400_000
BAD = {"nps_detractor", "csat_dissatisfied", "delivery_late", "delivery_failed", "ticket_unresolved"}


def _period(ms: int, period: str) -> dt.date:
    d = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date()
    return d.replace(day=1) if period == "month" else d - dt.timedelta(days=d.weekday())


def _next(d: dt.date, period: str, k: int = 1) -> dt.date:
    if period == "week":
        return d + dt.timedelta(days=7 * k)
    months = d.year * 12 + d.month - 1 + k
    return dt.date(months // 12, months % 12 + 1, 1)


def _ms(d: dt.date) -> int:
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp() * 1000)


def quantile(values: list[int], q: float) -> float | None:
    """Linear interpolation between the two nearest ranks (numpy's default, Excel's PERCENTILE.INC)."""
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _signal(e: Event) -> str | None:
    p = e["payload"]
    kind = e["event_type"]
    if kind == "SURVEY_RESPONSE" and p["survey_kind"] in ("NPS", "CSAT") and p.get("score") is not None:
        score = p["score"]
        if p["survey_kind"] == "NPS":
            return "nps_detractor" if score <= 6 else "nps_passive" if score <= 8 else "nps_promoter"
        return "csat_dissatisfied" if score <= p["scale_min"] + 1 else "csat_satisfied" if score >= p["scale_max"] - 1 else "csat_neutral"
    if kind == "DELIVERY_NOTICE":
        if p["status"] == "delivered":
            return "delivery_late" if e["occurred_at"] > p["promised_by"] else "delivery_on_time"
        if p["status"] in ("failed_attempt", "returned"):
            return "delivery_failed"
    if kind == "SUPPORT_INTERACTION":
        if p["action"] in ("opened", "reopened"):
            return "ticket_unresolved"
        if p["action"] == "resolved":
            return "ticket_resolved"
    return None


def compute_customer_truth(events: Iterable[Event], *, inactivity_days: float = 90.0, period: str = "month",
                           as_of_ms: int | None = None, quiet_share: float = 0.5) -> dict[str, Any]:
    """The customer figures of a stream of events (duplicates allowed; they count once). Activity = any
    customer-initiated event. Keys: ``as_of_ms``, ``summary``, ``churn`` {period: [active_at_start, churned,
    new_customers]}, ``lifecycle`` {period: [new, returning, resurrecting, dormant]}, ``cohorts`` {cohort:
    {customers, repeat_customers, on, on_or_after, revenue_minor}}, ``repeat_purchase_rate``, ``sales_cycle``
    {customers, cycle_ms_sum, median_ms, p90_ms}, ``sales_cycle_by_channel`` {channel: customers},
    ``at_risk`` {customer: reason}."""
    unique = dedup(events)
    stitched: dict[str, str] = {}
    for e in unique:
        if e["customer_id"] and e["anonymous_id"]:
            stitched[e["anonymous_id"]] = e["customer_id"]

    def who(e: Event) -> str:
        return str(e["customer_id"] or stitched.get(e["anonymous_id"]) or e["anonymous_id"])

    as_of = as_of_ms if as_of_ms is not None else max(e["occurred_at"] for e in unique)
    gap = int(round(inactivity_days * DAY_MS))
    people: set[str] = set()
    first_touch: dict[str, tuple[int, str, str]] = {}
    activity: dict[str, list[int]] = defaultdict(list)
    purchases: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    signals: dict[str, tuple[int, str, str]] = {}
    unsubscribed: set[str] = set()
    for e in unique:
        c, t, p = who(e), e["occurred_at"], e["payload"]
        people.add(c)
        if c not in first_touch or (t, e["event_id"]) < first_touch[c][:2]:
            first_touch[c] = (t, e["event_id"], e["channel"])
        if e["event_type"] == "EMAIL_ENGAGEMENT" and p["action"] == "unsubscribed":
            unsubscribed.add(c)
        if t > as_of:
            continue
        customer_initiated = not ((e["event_type"] == "EMAIL_ENGAGEMENT" and p["action"] in ("sent", "bounced"))
                                  or e["event_type"] == "DELIVERY_NOTICE")
        if customer_initiated:
            activity[c].append(t)
        if e["event_type"] == "CHECKOUT" and p["status"] == "completed":
            purchases[c].append((t, p["amount_minor"], p["currency"]))
        kind = _signal(e)
        if kind is not None and (c not in signals or t > signals[c][0]):
            signals[c] = (t, e["event_id"], kind)

    # spells and churn
    spells: dict[str, list[tuple[int, int]]] = {}
    for c, times in activity.items():
        times.sort()
        out: list[tuple[int, int]] = []
        for t in times:
            if out and t - (out[-1][1] - gap) <= gap:
                out[-1] = (out[-1][0], t + gap)
            else:
                out.append((t, t + gap))
        spells[c] = out
    first_period = min(_period(min(ts), period) for ts in activity.values())
    last_period = _period(as_of, period)
    periods = []
    d = first_period
    while d <= last_period:
        periods.append(d)
        d = _next(d, period)
    churn: dict[str, list[int]] = {}
    firsts: dict[dt.date, int] = defaultdict(int)
    for c, ts in activity.items():
        firsts[_period(min(ts), period)] += 1
    for s in periods:
        s_ms, e_ms = _ms(s), _ms(_next(s, period))
        active = churned = 0
        for c, sp in spells.items():
            for start, end in sp:
                if start < s_ms <= end:
                    active += 1
                    churned += end < e_ms and end <= as_of
        churn[s.isoformat()] = [active, churned, firsts[s]]

    # lifecycle
    lifecycle = {s.isoformat(): [0, 0, 0, 0] for s in periods}
    for c, ts in activity.items():
        act = {_period(t, period) for t in ts}
        first = min(act)
        for s in periods:
            prev = _next(s, period, -1)
            if s in act:
                lifecycle[s.isoformat()][0 if s == first else 1 if prev in act else 2] += 1
            elif prev in act:
                lifecycle[s.isoformat()][3] += 1

    # cohorts by first purchase
    cohorts: dict[str, dict[str, Any]] = {}
    for c, buys in purchases.items():
        cohort = _period(min(t for t, _, _ in buys), period)
        n = len([1 for s in periods if s >= cohort])
        entry = cohorts.setdefault(cohort.isoformat(), {"customers": 0, "repeat_customers": 0, "on": [0] * n,
                                                       "on_or_after": [0] * n, "revenue_minor": [{} for _ in range(n)]})
        entry["customers"] += 1
        entry["repeat_customers"] += len(buys) >= 2
        offsets = set()
        for t, amount, currency in buys:
            k = periods.index(_period(t, period)) - periods.index(cohort)
            offsets.add(k)
            entry["revenue_minor"][k][currency] = entry["revenue_minor"][k].get(currency, 0) + amount
        for k in offsets:
            entry["on"][k] += 1
        for k in range(max(offsets) + 1):
            entry["on_or_after"][k] += 1

    # sales cycle
    cycles: dict[str, int] = {}
    for c, buys in purchases.items():
        cycles[c] = min(t for t, _, _ in buys) - first_touch[c][0]
    by_channel: dict[str, int] = defaultdict(int)
    for c in cycles:
        by_channel[first_touch[c][2]] += 1

    # at risk
    quiet = int(round(quiet_share * inactivity_days * DAY_MS))
    at_risk = {c: sig[2] for c, sig in signals.items()
               if sig[2] in BAD and c in activity and quiet <= as_of - max(activity[c]) < gap}

    buyers = len(purchases)
    repeat = sum(1 for b in purchases.values() if len(b) >= 2)
    return {
        "as_of_ms": as_of,
        "summary": {"customers": len(people), "buyers": buyers, "repeat_buyers": repeat, "unsubscribed": len(unsubscribed)},
        "repeat_purchase_rate": repeat / buyers if buyers else None,
        "churn": churn,
        "lifecycle": lifecycle,
        "cohorts": dict(sorted(cohorts.items())),
        "sales_cycle": {"customers": len(cycles), "cycle_ms_sum": sum(cycles.values()),
                        "median_ms": quantile(list(cycles.values()), 0.5), "p90_ms": quantile(list(cycles.values()), 0.9)},
        "sales_cycle_by_channel": dict(sorted(by_channel.items())),
        "at_risk": dict(sorted(at_risk.items())),
    }
