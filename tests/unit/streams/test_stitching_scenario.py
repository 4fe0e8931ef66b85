"""The issue's scenario through route → apply → windows, with the answers worked out by hand."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.unit.streams.journey_factory import DAY, HOUR, MIN, T0, MiniPipeline, ad_click, checkout, delivery, eid, page_view, survey

T_AD = T0 + 10_000
T_LOGIN = T0 + 5 * MIN
T_CHECKOUT = T0 + 20 * MIN
PROMISED = T0 + 3 * DAY
T_DELIVERED = PROMISED + 2 * HOUR
T_NPS = T0 + 4 * DAY


def scenario() -> list[dict[str, Any]]:
    return [
        ad_click(1, T_AD, campaign="spring", cost=120, anon="a1"),
        page_view(2, T_LOGIN, anon="a1", customer="c1"),
        checkout(3, T_CHECKOUT, status="completed", order="o1", amount=4999, customer="c1"),
        delivery(4, T_DELIVERED, promised_by=PROMISED, customer="c1"),
        survey(5, T_NPS, kind="NPS", score=6, customer="c1"),
    ]


CUSTOMER_JOURNEY = {
    "journey_id": f"c1:{T_AD}",
    "customer_id": "c1",
    "is_anonymous": False,
    "merged_into": None,
    "first_touch_at": T_AD,
    "last_touch_at": T_NPS,
    "anonymous_ids": ["a1"],
    "path": [
        {"event_type": "AD_CLICK", "channel": "social", "occurred_at": T_AD},
        {"event_type": "PAGE_VIEW", "channel": "web", "occurred_at": T_LOGIN},
        {"event_type": "CHECKOUT", "channel": "web", "occurred_at": T_CHECKOUT},
        {"event_type": "DELIVERY_NOTICE", "channel": "carrier", "occurred_at": T_DELIVERED},
        {"event_type": "SURVEY_RESPONSE", "channel": "email", "occurred_at": T_NPS},
    ],
    "path_truncated": 0,
    "event_count": 5,
    "counts_by_type": {"AD_CLICK": 1, "PAGE_VIEW": 1, "CHECKOUT": 1, "DELIVERY_NOTICE": 1, "SURVEY_RESPONSE": 1},
    "stage": "feedback",
    "service_contacted": False,
    "first_touch_campaign": "spring",
    "first_touch_channel": "social",
    "last_touch_campaign": "spring",
    "last_touch_channel": "web",
    "converted": True,
    "converted_at": T_CHECKOUT,
    "time_to_convert_ms": 20 * MIN - 10_000,
    "orders": 1,
    "revenue_minor": 4999,
    "currency": "EUR",
    "deliveries_on_time": 0,
    "deliveries_late": 1,
    "deliveries_failed": 0,
    "delivery_delay_ms_sum": 2 * HOUR,
    "nps_score": 6,
    "csat_score": None,
    "ces_score": None,
    "support_tickets_opened": 0,
    "support_tickets_resolved": 0,
    "resolution_ms_sum": 0,
}

ZERO_COMPONENTS = dict.fromkeys(
    ["touchpoints", "ad_clicks", "ad_spend_minor", "attributed_conversions", "attributed_revenue_minor",
     "checkouts_started", "checkouts_completed", "checkouts_abandoned", "checkouts_failed", "revenue_minor",
     "deliveries_delivered", "deliveries_on_time", "deliveries_late", "deliveries_failed", "delivery_delay_ms_sum",
     "nps_promoters", "nps_passives", "nps_detractors", "csat_satisfied", "csat_total", "ces_sum", "ces_count",
     "tickets_opened", "tickets_resolved", "resolution_ms_sum", "emails_sent", "emails_opened", "emails_clicked",
     "emails_bounced", "emails_unsubscribed", "late_events"],
    0,
)  # fmt: skip


def _row(ws: int, dims: tuple[str, str, str, str], version: int, **components: int) -> dict[str, Any]:
    return {
        "window_start": ws, "window_seconds": 60, "partition": 0, "event_type": dims[0], "channel": dims[1],
        "campaign_id": dims[2], "currency": dims[3], "version": version, "correction_id": "", **ZERO_COMPONENTS, **components,
    }  # fmt: skip


def without(snap: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in snap.items() if k not in keys}


@pytest.mark.parametrize("codec", [False, True], ids=["in-memory", "through-state-codec"])
def test_scenario_gives_the_known_journey_merge_and_metrics(codec: bool) -> None:
    p = MiniPipeline(codec=codec)
    p.feed(*scenario())

    live = p.live()
    assert list(live) == [f"c1:{T_AD}"]
    # ad click (restitched) + page view + checkout + delivery + survey = 5 accepted events
    assert without(live[f"c1:{T_AD}"], "updated_at") == {**CUSTOMER_JOURNEY, "version": 5}

    anon = p.snapshots[f"a1:{T_AD}"]
    assert anon["is_anonymous"] is True
    assert anon["merged_into"] == "c1"
    assert anon["version"] == 2  # its ad click, then the merge marker
    assert anon["event_count"] == 1

    # merged_at is the processing time of the login (now advances by 1 per fed event; login is the 2nd)
    assert p.merges == [
        {"anonymous_id": "a1", "customer_id": "c1", "merged_at": T0 + 10 * DAY + 2, "event_id": eid(2),
         "event_occurred_at": T_LOGIN, "events_moved": 1},
    ]  # fmt: skip

    # Journey-topic offsets: 0 ad click (anon), 1 ad click restitched, 2 login, 3 merge marker, 4 checkout,
    # 5 delivery, 6 survey. The ad click counts once (restitched copies contribute nothing).
    rows = [without(r, "emitted_at") for r in p.metric_rows()]
    assert rows == [
        _row(T0, ("AD_CLICK", "social", "spring", "EUR"), 1, touchpoints=1, ad_clicks=1, ad_spend_minor=120),
        _row(T0 + 5 * MIN, ("PAGE_VIEW", "web", "", ""), 3, touchpoints=1),
        _row(T0 + 20 * MIN, ("CHECKOUT", "web", "", "EUR"), 5, touchpoints=1),
        _row(T0 + 20 * MIN, ("CHECKOUT", "web", "spring", "EUR"), 5, checkouts_completed=1,
             revenue_minor=4999, attributed_conversions=1, attributed_revenue_minor=4999),
        _row(T_DELIVERED, ("DELIVERY_NOTICE", "carrier", "", ""), 6, touchpoints=1, deliveries_delivered=1,
             deliveries_late=1, delivery_delay_ms_sum=2 * HOUR),
        _row(T_NPS, ("SURVEY_RESPONSE", "email", "", ""), 7, touchpoints=1, nps_detractors=1),
    ]  # fmt: skip
    assert p.late == 0


def test_duplicates_change_nothing_anywhere() -> None:
    p = MiniPipeline()
    p.feed(*scenario())
    journeys = {k: without(v, "updated_at") for k, v in p.snapshots.items()}
    totals, merges = p.totals(), list(p.merges)

    p.feed(*scenario())  # every event again, login included
    p.feed(*reversed(scenario()))

    assert {k: without(v, "updated_at") for k, v in p.snapshots.items()} == journeys
    assert p.totals() == totals
    assert p.merges == merges  # no second merge record
    # 10 re-fed events, plus the ad click re-sent restitched (twice) and the merge marker (twice) on login replays
    assert p.duplicates == 14


def test_every_arrival_order_gives_the_same_customer_journey() -> None:
    expected = {k: v for k, v in CUSTOMER_JOURNEY.items()}
    for order in itertools.permutations(scenario()):
        p = MiniPipeline()
        p.feed(*order)
        live = p.live()
        assert list(live) == [f"c1:{T_AD}"], [e["event_type"] for e in order]
        assert without(live[f"c1:{T_AD}"], "updated_at", "version") == expected, [e["event_type"] for e in order]
        # whatever the order, each touchpoint is counted exactly once in the metrics
        assert p.totals()["touchpoints"] + p.totals().get("late_events", 0) == 5
