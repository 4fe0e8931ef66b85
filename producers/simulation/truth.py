"""Ground truth: the figures the pipeline must report, computed from the deduplicated events alone.

The definitions are the pipeline's (one place each, so the demo can compare like with like):
- duplicates (same event_id) count once; the first copy is the event;
- a delivery is on time when its `delivered` notice's occurred_at <= promised_by, late otherwise;
  a shipment is one failed delivery when a `failed_attempt` or `returned` notice comes before its first
  `delivered` (or it is never delivered): "failed, then delivered" counts one of each;
- NPS: promoters 9-10, passives 7-8, detractors 0-6; score = (promoters - detractors) / responses * 100;
- CSAT: satisfied = score >= 4 of 5; CES: mean score;
- a ticket's resolution time = its first `resolved` minus its first `opened` (tickets with both);
- revenue = sum of `completed` checkouts' amounts per currency; a conversion = a completed checkout;
- identity merges = anonymous ids that appeared on an event together with a customer id.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from touchpoint.producers.simulation.customers import Event


def dedup(events: Iterable[Event]) -> list[Event]:
    seen: set[str] = set()
    out = []
    for event in events:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            out.append(event)
    return out


def _ratio(num: float, den: float, scale: float = 100.0) -> float | None:
    return round(num / den * scale, 2) if den else None


def compute_truth(events: Iterable[Event]) -> dict[str, Any]:
    """Truth of a stream of events (duplicates allowed; they count once)."""
    unique = dedup(events)
    by_type: Counter[str] = Counter()
    customers: set[str] = set()
    anonymous: set[str] = set()
    merged: set[str] = set()
    checkouts: Counter[str] = Counter()
    converted: set[str] = set()
    revenue: Counter[str] = Counter()
    ad_spend: Counter[str] = Counter()
    clicks_by_campaign: Counter[str] = Counter()
    deliveries: Counter[str] = Counter()
    delay_sum = 0
    first_failure: dict[str, int] = {}
    first_delivery: dict[str, int] = {}
    nps: Counter[str] = Counter()
    csat_total = csat_satisfied = ces_sum = ces_count = 0
    emails: Counter[str] = Counter()
    tickets_opened: dict[str, int] = {}
    tickets_resolved: dict[str, int] = {}
    for e in unique:
        by_type[e["event_type"]] += 1
        if e["customer_id"]:
            customers.add(e["customer_id"])
        if e["anonymous_id"]:
            anonymous.add(e["anonymous_id"])
            if e["customer_id"]:
                merged.add(e["anonymous_id"])
        p = e["payload"]
        kind = e["event_type"]
        if kind == "AD_CLICK":
            ad_spend[p["currency"]] += p["cost_minor"]
            clicks_by_campaign[p["campaign_id"]] += 1
        elif kind == "CHECKOUT":
            checkouts[p["status"]] += 1
            if p["status"] == "completed":
                revenue[p["currency"]] += p["amount_minor"]
                converted.add(e["customer_id"] or e["anonymous_id"])
        elif kind == "DELIVERY_NOTICE":
            if p["status"] == "delivered":
                deliveries["delivered"] += 1
                if e["occurred_at"] <= p["promised_by"]:
                    deliveries["on_time"] += 1
                else:
                    deliveries["late"] += 1
                    delay_sum += e["occurred_at"] - p["promised_by"]
            elif p["status"] in ("failed_attempt", "returned"):
                first_failure[p["shipment_id"]] = min(first_failure.get(p["shipment_id"], e["occurred_at"]), e["occurred_at"])
            if p["status"] == "delivered":
                first_delivery[p["shipment_id"]] = min(first_delivery.get(p["shipment_id"], e["occurred_at"]), e["occurred_at"])
        elif kind == "SURVEY_RESPONSE":
            score = p["score"]
            if p["survey_kind"] == "NPS":
                nps["promoters" if score >= 9 else "passives" if score >= 7 else "detractors"] += 1
            elif p["survey_kind"] == "CSAT":
                csat_total += 1
                csat_satisfied += score >= 4
            else:
                ces_count += 1
                ces_sum += score
        elif kind == "EMAIL_ENGAGEMENT":
            emails[p["action"]] += 1
        elif kind == "SUPPORT_INTERACTION":
            if p["action"] == "opened":
                tickets_opened.setdefault(p["ticket_id"], e["occurred_at"])
            elif p["action"] == "resolved":
                tickets_resolved.setdefault(p["ticket_id"], e["occurred_at"])
    deliveries["failed"] = sum(1 for ship, at in first_failure.items() if at < first_delivery.get(ship, at + 1))
    resolution = sorted(tickets_resolved[t] - tickets_opened[t] for t in tickets_resolved if t in tickets_opened)
    responses = sum(nps.values())
    return {
        "events": len(unique),
        "events_by_type": dict(sorted(by_type.items())),
        "customers": len(customers),
        "anonymous_visitors": len(anonymous),
        "identity_merges": len(merged),
        "ad_clicks": by_type["AD_CLICK"],
        "ad_clicks_by_campaign": dict(sorted(clicks_by_campaign.items())),
        "ad_spend_minor": dict(sorted(ad_spend.items())),
        "checkouts": {s: checkouts[s] for s in ("started", "payment_submitted", "completed", "abandoned", "failed")},
        "orders": checkouts["completed"],
        "converted_customers": len(converted),
        "revenue_minor": dict(sorted(revenue.items())),
        "deliveries": {
            "delivered": deliveries["delivered"], "on_time": deliveries["on_time"], "late": deliveries["late"],
            "failed": deliveries["failed"], "delay_ms_sum": delay_sum,
            "on_time_pct": _ratio(deliveries["on_time"], deliveries["delivered"]),
        },
        "nps": {
            "responses": responses, "promoters": nps["promoters"], "passives": nps["passives"],
            "detractors": nps["detractors"], "score": _ratio(nps["promoters"] - nps["detractors"], responses),
        },
        "csat": {"responses": csat_total, "satisfied": csat_satisfied, "pct": _ratio(csat_satisfied, csat_total)},
        "ces": {"responses": ces_count, "sum": ces_sum, "average": _ratio(ces_sum, ces_count, 1.0)},
        "support": {
            "opened": len(tickets_opened), "resolved": len(resolution),
            "resolution_ms_sum": sum(resolution),
            "resolution_avg_ms": round(sum(resolution) / len(resolution)) if resolution else None,
        },
        "emails": {a: emails[a] for a in ("sent", "opened", "clicked", "bounced", "unsubscribed")},
    }


def nps_by_delivery_outcome(events: Iterable[Event]) -> dict[str, float | None]:
    """Mean NPS answer per delivery outcome of the rated order (for realism checks)."""
    outcome: dict[str, str] = {}
    scores: dict[str, list[int]] = defaultdict(list)
    unique = dedup(events)
    for e in unique:
        p = e["payload"]
        if e["event_type"] == "DELIVERY_NOTICE":
            if p["status"] == "delivered":
                outcome.setdefault(p["order_id"], "on_time" if e["occurred_at"] <= p["promised_by"] else "late")
            elif p["status"] in ("failed_attempt", "returned"):
                outcome[p["order_id"]] = "failed" if p["status"] == "returned" else outcome.get(p["order_id"], "failed")
    for e in unique:
        p = e["payload"]
        if e["event_type"] == "SURVEY_RESPONSE" and p["survey_kind"] == "NPS" and p["order_id"] in outcome:
            scores[outcome[p["order_id"]]].append(p["score"])
    return {k: (sum(v) / len(v) if v else None) for k, v in sorted(scores.items())}
