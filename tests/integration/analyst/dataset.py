"""A small hand-made store whose report figures are known exactly (worked out in the comments).

Rows go through the sink's own row builders (``touchpoint.sinks.rows``) into tables created by the sink's own
migrations, so the report is tested against the real table contract.

People: c1 (clicked an ad as anonymous a1, then logged in: a1 is stitched to c1), c2, c3, c4, and a2 (anonymous,
never stitched). Day 1 = 2026-03-02, day 2 = 2026-03-03 (UTC).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from touchpoint.sinks import rows

D1 = int(dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc).timestamp() * 1000)
D2 = D1 + 86_400_000
H = 3_600_000
M = 60_000


def _event(event_type: str, at: int, payload: dict[str, Any], customer: str | None = None,
           anonymous: str | None = None, channel: str = "web") -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "event_type": event_type, "occurred_at": at, "customer_id": customer,
            "anonymous_id": anonymous, "channel": channel, "source": "test", "session_id": None, "context": {},
            "payload": payload}


def ad(at: int, campaign: str, cost: int, currency: str, customer: str | None = None, anonymous: str | None = None) -> dict[str, Any]:
    return _event("AD_CLICK", at, {"campaign_id": campaign, "ad_id": "ad1", "platform": "google", "placement": None,
                                   "cost_minor": cost, "currency": currency}, customer, anonymous, "social")


def view(at: int, customer: str | None = None, anonymous: str | None = None) -> dict[str, Any]:
    return _event("PAGE_VIEW", at, {"url": "/", "page_type": "home", "title": None, "referrer": None,
                                    "product_id": None}, customer, anonymous)


def checkout(at: int, customer: str, order: str, status: str, amount: int, currency: str) -> dict[str, Any]:
    return _event("CHECKOUT", at, {"order_id": order, "status": status, "amount_minor": amount, "currency": currency,
                                   "item_count": 1, "payment_method": None, "failure_reason": None}, customer)


def delivery(at: int, customer: str, order: str, status: str, promised_by: int) -> dict[str, Any]:
    return _event("DELIVERY_NOTICE", at, {"order_id": order, "shipment_id": "s-" + order, "carrier": "dhl",
                                          "status": status, "promised_by": promised_by}, customer, channel="carrier")


def survey(at: int, customer: str, kind: str, score: int) -> dict[str, Any]:
    scale = {"NPS": (0, 10), "CSAT": (1, 5), "CES": (1, 7)}[kind]
    return _event("SURVEY_RESPONSE", at, {"survey_kind": kind, "score": score, "scale_min": scale[0],
                                          "scale_max": scale[1], "comment": None, "order_id": None,
                                          "rated_event_id": None}, customer, channel="email")


def support(at: int, customer: str, ticket: str, action: str) -> dict[str, Any]:
    return _event("SUPPORT_INTERACTION", at, {"ticket_id": ticket, "kind": "chat", "action": action, "topic": "delivery",
                                              "order_id": None}, customer, channel="chat")


def email(at: int, customer: str, message: str, action: str) -> dict[str, Any]:
    return _event("EMAIL_ENGAGEMENT", at, {"campaign_id": "newsletter", "message_id": message, "action": action,
                                           "link_url": None}, customer, channel="email")


def events() -> list[dict[str, Any]]:
    """38 distinct events."""
    return [
        # c1 (7): funnel level 5 only through identity resolution (the ad click is a1's)
        ad(D1 + 9 * H, "spring", 120, "EUR", anonymous="a1"),
        view(D1 + 9 * H + 5 * M, customer="c1", anonymous="a1"),
        checkout(D1 + 9 * H + 10 * M, "c1", "o1", "started", 5000, "EUR"),
        checkout(D1 + 9 * H + 12 * M, "c1", "o1", "completed", 5000, "EUR"),
        delivery(D1 + 15 * H, "c1", "o1", "delivered", promised_by=D1 + 18 * H),  # on time
        survey(D2 + 10 * H, "c1", "NPS", 10),  # promoter
        survey(D2 + 10 * H + M, "c1", "CSAT", 5),  # satisfied
        # c2 (8): funnel level 5
        ad(D1 + 10 * H, "spring", 80, "EUR", customer="c2"),
        checkout(D1 + 10 * H + 5 * M, "c2", "o2", "started", 3000, "EUR"),
        checkout(D1 + 10 * H + 6 * M, "c2", "o2", "completed", 3000, "EUR"),
        delivery(D2 + 12 * H, "c2", "o2", "delivered", promised_by=D2 + 9 * H),  # late by 3 h
        survey(D2 + 13 * H, "c2", "NPS", 3),  # detractor
        survey(D2 + 13 * H + M, "c2", "CES", 2),
        support(D2 + 13 * H + 30 * M, "c2", "t1", "opened"),
        support(D2 + 15 * H + 30 * M, "c2", "t1", "resolved"),  # 2 h
        # c3 (9): funnel level 2 (abandoned)
        ad(D1 + 11 * H, "summer", 50, "USD", customer="c3"),
        checkout(D1 + 11 * H + 10 * M, "c3", "o3", "started", 1500, "USD"),
        checkout(D1 + 11 * H + 40 * M, "c3", "o3", "abandoned", 1500, "USD"),
        survey(D2 + 9 * H, "c3", "NPS", 8),  # passive
        survey(D2 + 9 * H + M, "c3", "CSAT", 2),  # not satisfied
        survey(D2 + 9 * H + 2 * M, "c3", "CES", 5),
        support(D1 + 12 * H, "c3", "t2", "opened"),
        support(D1 + 12 * H + 30 * M, "c3", "t2", "resolved"),  # 30 min
        support(D2 + 8 * H, "c3", "t3", "opened"),  # never resolved
        # c4 (6): no ad click, funnel level 0
        checkout(D2 + 14 * H, "c4", "o4", "started", 2000, "USD"),
        checkout(D2 + 14 * H + M, "c4", "o4", "failed", 2000, "USD"),
        checkout(D2 + 14 * H + 5 * M, "c4", "o5", "started", 2000, "USD"),
        checkout(D2 + 14 * H + 6 * M, "c4", "o5", "completed", 2000, "USD"),
        delivery(D2 + 18 * H, "c4", "o5", "failed_attempt", promised_by=D2 + 20 * H),
        survey(D2 + 20 * H, "c4", "NPS", 9),  # promoter
        # a2 (2): anonymous, funnel level 1
        ad(D2 + 8 * H, "summer", 70, "USD", anonymous="a2"),
        view(D2 + 8 * H + M, anonymous="a2"),
        # emails (6): 3 sent, 2 opened, 1 clicked
        email(D1 + 8 * H, "c1", "m1", "sent"), email(D1 + 8 * H + 30 * M, "c1", "m1", "opened"),
        email(D1 + 8 * H + 31 * M, "c1", "m1", "clicked"), email(D1 + 8 * H, "c2", "m2", "sent"),
        email(D1 + 8 * H, "c3", "m3", "sent"), email(D1 + 9 * H, "c3", "m3", "opened"),
    ]


def _window(at: int, partition: int, event_type: str, version: int, campaign: str = "", currency: str = "",
            **components: int) -> dict[str, Any]:
    return {"window_start": at - at % M, "window_seconds": 60, "partition": partition, "event_type": event_type,
            "channel": "web", "campaign_id": campaign, "currency": currency, "version": version, "emitted_at": at,
            **components}


def metric_windows() -> list[dict[str, Any]]:
    """Snapshots: the newest version per key counts; keys on two worker partitions add up."""
    return [
        _window(D1 + 9 * H, 0, "AD_CLICK", 1, "spring", "EUR", touchpoints=1, ad_clicks=1, ad_spend_minor=120),
        _window(D1 + 10 * H, 1, "AD_CLICK", 1, "spring", "EUR", touchpoints=1, ad_clicks=1, ad_spend_minor=80),
        # an older snapshot of the next key: replaced, must not count
        _window(D1 + 10 * H + 6 * M, 1, "CHECKOUT", 3, "spring", "EUR", touchpoints=1, checkouts_completed=1),
        _window(D1 + 10 * H + 6 * M, 1, "CHECKOUT", 4, "spring", "EUR", touchpoints=2, checkouts_started=1,
                checkouts_completed=1, revenue_minor=3000, attributed_conversions=1, attributed_revenue_minor=3000),
        _window(D2 + 10 * H, 0, "SURVEY_RESPONSE", 1, nps_promoters=1),
        _window(D2 + 10 * H, 0, "SURVEY_RESPONSE", 2, touchpoints=2, nps_promoters=1, csat_total=1, csat_satisfied=1),
        _window(D2 + 10 * H, 1, "SURVEY_RESPONSE", 7, touchpoints=3, nps_detractors=1, nps_passives=1, ces_sum=2,
                ces_count=1),
    ]


def journeys() -> list[dict[str, Any]]:
    def snap(journey_id: str, owner: str, version: int, types: list[str], converted: bool, anonymous: bool = False,
             merged_into: str | None = None) -> dict[str, Any]:
        path = [{"event_type": t, "channel": "web", "occurred_at": D1 + i * M} for i, t in enumerate(types)]
        return {"journey_id": journey_id, "customer_id": owner, "is_anonymous": anonymous, "merged_into": merged_into,
                "version": version, "updated_at": D2, "first_touch_at": D1, "last_touch_at": D1 + len(types) * M,
                "anonymous_ids": [], "path": path, "path_truncated": 0, "event_count": len(types),
                "counts_by_type": {}, "stage": "purchase", "service_contacted": False, "converted": converted,
                "converted_at": D1 if converted else None, "time_to_convert_ms": None, "orders": int(converted),
                "revenue_minor": 0, "currency": None, "deliveries_on_time": 0, "deliveries_late": 0,
                "deliveries_failed": 0, "delivery_delay_ms_sum": 0, "nps_score": None, "csat_score": None,
                "ces_score": None, "support_tickets_opened": 0, "support_tickets_resolved": 0, "resolution_ms_sum": 0}

    buy = ["AD_CLICK", "CHECKOUT", "CHECKOUT"]
    return [
        snap("c1:1", "c1", 1, ["AD_CLICK"], False),  # superseded by version 2
        snap("c1:1", "c1", 2, buy, True),
        snap("c2:1", "c2", 3, buy, True),
        snap("c3:1", "c3", 2, ["AD_CLICK", "CHECKOUT", "CHECKOUT"], False),
        snap("a1:1", "a1", 1, ["AD_CLICK"], False, anonymous=True, merged_into="c1"),  # stitched: not current
        snap("a2:1", "a2", 1, ["AD_CLICK", "PAGE_VIEW"], False, anonymous=True),
    ]


def merges() -> list[dict[str, Any]]:
    return [{"anonymous_id": "a1", "customer_id": "c1", "merged_at": D1 + 9 * H + 5 * M, "event_id": str(uuid.uuid4()),
             "event_occurred_at": D1 + 9 * H + 5 * M, "events_moved": 1}]


def _insert(client: Any, database: str, table: str, columns: tuple[str, ...], data: list[tuple[Any, ...]]) -> None:
    client.insert(f"{database}.{table}", [list(c) for c in zip(*data)], column_names=list(columns),
                  column_oriented=True)


def load(client: Any, database: str) -> list[dict[str, Any]]:
    """Insert the dataset (plus one replayed event in a separate insert, as after a crash) into ``database``,
    whose tables the sink's migrations created. Returns the events."""
    evs = events()
    _insert(client, database, "touchpoints", rows.TOUCHPOINT_COLUMNS,
            [rows.touchpoint_row(e, "events", 0, i) for i, e in enumerate(evs)])
    # the same NPS answer of c2 delivered again by a replay: FINAL must count it once
    replayed = next(e for e in evs if e["event_type"] == "SURVEY_RESPONSE" and e["customer_id"] == "c2")
    _insert(client, database, "touchpoints", rows.TOUCHPOINT_COLUMNS, [rows.touchpoint_row(replayed, "events", 1, 999)])
    _insert(client, database, "metrics_minute", rows.METRIC_COLUMNS,
            [rows.metric_row(w, "metrics", 0, i) for i, w in enumerate(metric_windows())])
    _insert(client, database, "journeys", rows.JOURNEY_COLUMNS,
            [rows.journey_row(j, "journeys", 0, i) for i, j in enumerate(journeys())])
    _insert(client, database, "identity_merges", rows.MERGE_COLUMNS,
            [rows.merge_row(m, "merges", 0, i) for i, m in enumerate(merges())])
    return evs
